// Package faults holds Ferry's opt-in fault runs against real nats-server
// processes (internal/natscluster): an external broker killed or hung
// under services that keep serving HTTP, and a node of a 3-node cluster
// killed or paused under publish, consume and job load. The runs are
// tests; they run when FERRY_CLUSTER_TESTS=1 and write what they measured
// as reliability records into $FERRY_RELIABILITY_RECORDS when it is set.
package faults
