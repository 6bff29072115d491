// Package deploy is the shop's deployment on Kubernetes: the manifests in
// kubernetes/ (applied with kubectl apply -k), the values of NATS's Helm
// chart in nats-values.yaml, and README.md, which walks through both. It
// holds no code: its tests check the manifests and examples/shop/Dockerfile,
// so a broken file fails go test ./... before it reaches a cluster, and run
// the shop as four least-privilege NATS users from nats-permissions.conf
// (one per service) against nats-server, refusals included.
package deploy
