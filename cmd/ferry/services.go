package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrygo/ferry"
)

func (a *app) servicesCommand() *cobra.Command {
	var instances bool
	cmd := &cobra.Command{
		Use:   "services",
		Short: "List live services: instances, versions, endpoints, request rates and p50/p99 latency",
		Long: `services asks every service instance on the broker for its description and
statistics (the NATS service protocol: $SRV.INFO and $SRV.STATS) and prints
a table of services, then one of endpoints: the last minute's requests per
second, errors and latency per transport. Across instances, rates and
errors add up and a percentile is the worst instance's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := a.request(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			list, err := ferry.ListServices(ctx, c)
			if err != nil {
				return a.fail(err)
			}
			if a.json {
				return a.printJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(a.stdout, "no service answered")
				return nil
			}
			a.printServices(list, instances)
			return nil
		},
	}
	cmd.Flags().BoolVar(&instances, "instances", false, "list each instance instead of each service")
	return cmd
}

// printServices prints the services table and the endpoints table.
func (a *app) printServices(list []ferry.ServiceInstance, perInstance bool) {
	type group struct {
		name      string
		instances []ferry.ServiceInstance
	}
	var groups []*group
	for _, inst := range list {
		if len(groups) == 0 || groups[len(groups)-1].name != inst.Name {
			groups = append(groups, &group{name: inst.Name})
		}
		g := groups[len(groups)-1]
		g.instances = append(g.instances, inst)
	}
	var rows [][]string
	if perInstance {
		for _, inst := range list {
			rows = append(rows, []string{inst.Name, inst.ID, inst.Version, duration(time.Since(inst.Started)), inst.Metadata["http"], strconv.Itoa(len(inst.Endpoints))})
		}
		a.table([]string{"SERVICE", "INSTANCE", "VERSION", "UP", "HTTP", "ENDPOINTS"}, rows)
	} else {
		for _, g := range groups {
			var versions []string
			oldest := time.Now()
			for _, inst := range g.instances {
				if !slices.Contains(versions, inst.Version) {
					versions = append(versions, inst.Version)
				}
				if !inst.Started.IsZero() && inst.Started.Before(oldest) {
					oldest = inst.Started
				}
			}
			rows = append(rows, []string{g.name, strconv.Itoa(len(g.instances)), strings.Join(versions, ","), duration(time.Since(oldest)),
				strconv.Itoa(len(g.instances[0].Endpoints)), g.instances[0].Description})
		}
		a.table([]string{"SERVICE", "INSTANCES", "VERSION", "UP", "ENDPOINTS", "DESCRIPTION"}, rows)
	}

	rows = rows[:0]
	for _, g := range groups {
		var names []string
		byName := map[string][]ferry.EndpointStats{}
		for _, inst := range g.instances {
			for _, ep := range inst.Endpoints {
				if _, ok := byName[ep.Name]; !ok {
					names = append(names, ep.Name)
				}
				byName[ep.Name] = append(byName[ep.Name], ep)
			}
		}
		for _, name := range names {
			eps := byName[name]
			route := strings.TrimSpace(eps[0].Metadata["method"] + " " + eps[0].Metadata["path"])
			h, n := combine(eps, func(r *ferry.RecentStats) ferry.LatencyStats { return r.HTTP }), combine(eps, func(r *ferry.RecentStats) ferry.LatencyStats { return r.NATS })
			rows = append(rows, append([]string{g.name, name, route}, append(latencyCells(h), latencyCells(n)...)...))
		}
	}
	fmt.Fprintln(a.stdout)
	a.table([]string{"SERVICE", "ENDPOINT", "ROUTE", "HTTP/S", "ERR", "P50", "P99", "NATS/S", "ERR", "P50", "P99"}, rows)
}

// combine adds up one transport's recent figures across instances; a
// percentile is the worst instance's. ok is false when no instance
// reports them.
func combine(eps []ferry.EndpointStats, of func(*ferry.RecentStats) ferry.LatencyStats) *ferry.LatencyStats {
	var sum *ferry.LatencyStats
	for _, ep := range eps {
		if ep.Recent == nil {
			continue
		}
		s := of(ep.Recent)
		if sum == nil {
			sum = &ferry.LatencyStats{}
		}
		sum.Requests += s.Requests
		sum.Errors += s.Errors
		sum.Rate += s.Rate
		sum.P50, sum.P99 = max(sum.P50, s.P50), max(sum.P99, s.P99)
	}
	return sum
}

// latencyCells formats a transport's rate, error count and percentiles;
// "-" when not reported.
func latencyCells(s *ferry.LatencyStats) []string {
	if s == nil {
		return []string{"-", "-", "-", "-"}
	}
	if s.Requests == 0 {
		return []string{"0", "0", "", ""}
	}
	return []string{strconv.FormatFloat(s.Rate, 'f', 2, 64), strconv.FormatUint(s.Errors, 10), duration(s.P50), duration(s.P99)}
}
