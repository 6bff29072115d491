package main

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

// series is one line of a panel.
type series struct {
	name  string
	color string
	y     func(Sample) float64
}

// palette colours the kinds' lines.
var palette = [kinds]string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

// SVG plots the samples in four panels stacked over one time axis:
// throughput per kind, p99 per kind, goroutines, and heap and RSS.
func (r *Result) SVG() string {
	const width, panelH, top, gap = 960, 170, 100, 50
	var rate, p99 []series
	for k := range kinds {
		rate = append(rate, series{kindNames[k], palette[k], func(s Sample) float64 { return s.Rate[k] }})
		p99 = append(p99, series{kindNames[k], palette[k], func(s Sample) float64 { return float64(s.P99[k]) / float64(time.Millisecond) }})
	}
	panels := []struct {
		title string
		lines []series
	}{
		{"throughput (per second)", rate},
		{"p99 latency (ms) per sample", p99},
		{"goroutines", []series{{"goroutines", "#333333", func(s Sample) float64 { return float64(s.Goroutines) }}}},
		{"memory (MiB)", []series{
			{"RSS (VmRSS)", "#d62728", func(s Sample) float64 { return s.RSSMiB }},
			{"Go heap (HeapAlloc)", "#1f77b4", func(s Sample) float64 { return s.HeapMiB }},
		}},
	}
	height := top + len(panels)*(panelH+gap) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", 70, html.EscapeString(
		fmt.Sprintf("Ferry soak: the shop in one process, %s, %s", r.Options.Duration, r.Started.UTC().Format("2006-01-02 15:04 UTC"))))
	verdict, how, _ := strings.Cut(r.Verdict, "; ")
	fmt.Fprintf(&b, `<text x="%d" y="46">%s</text>`+"\n", 70, html.EscapeString(verdict))
	fmt.Fprintf(&b, `<text x="%d" y="64" fill="#555">%s</text>`+"\n", 70, html.EscapeString(how))
	for i, p := range panels {
		r.panel(&b, p.title, p.lines, 70, top+i*(panelH+gap), width-290, panelH)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// panel draws one panel at (x, y) of size w×h with its legend at its right.
func (r *Result) panel(b *strings.Builder, title string, lines []series, x, y, w, h int) {
	end := r.Options.Duration.Seconds()
	top := 0.0
	for _, l := range lines {
		for _, s := range r.Samples {
			top = math.Max(top, l.y(s))
		}
	}
	top = niceCeil(top)
	px := func(t time.Duration) float64 { return float64(x) + t.Seconds()/end*float64(w) }
	py := func(v float64) float64 { return float64(y+h) - v/top*float64(h) }
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x, y-8, html.EscapeString(title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x, y, w, h)
	for i := 0; i <= 4; i++ { // value grid
		v := top * float64(i) / 4
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>`, x, x+w, py(v), py(v))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x-6, py(v)+4, trimFloat(v))
	}
	step := timeStep(r.Options.Duration)
	for t := time.Duration(0); t <= r.Options.Duration; t += step { // time grid
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>`, px(t), px(t), y, y+h)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(t), y+h+15, fmtAt(t))
	}
	if r.Warmup > 0 {
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#888" stroke-dasharray="4 3"/>`+"\n", px(r.Warmup), px(r.Warmup), y, y+h)
	}
	for i, l := range lines {
		var pts []string
		for _, s := range r.Samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.At), py(l.y(s))))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", l.color, strings.Join(pts, " "))
		ly := y + 12 + i*16
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`, x+w+15, x+w+35, ly-4, ly-4, l.color)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", x+w+40, ly, html.EscapeString(l.name))
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// timeStep is the spacing of the time axis's labels: about ten of them.
func timeStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute} {
		if d/s <= 10 {
			return s
		}
	}
	return 30 * time.Minute
}

// fmtAt labels a moment of the run: "90s", "2m", "2m30s".
func fmtAt(t time.Duration) string {
	if t < time.Minute || t%time.Minute != 0 {
		return t.String()
	}
	return fmt.Sprintf("%dm", int(t.Minutes()))
}

// trimFloat prints v without needless decimals.
func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
