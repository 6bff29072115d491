// Package dashboard serves a live view of a Ferry system in a browser:
// its services and instances, their endpoints' traffic, topics and their
// consumers' lag, dead letters, jobs and workflow runs, and a picture of
// who publishes, consumes and calls what. It reads everything through
// the wire protocols of Ferry's operations API ([ferry.ListServices],
// [ferry.ListTopics], [ferry.ListDeadLetters], [ferry.ListJobs],
// [ferry.FetchAsyncAPI], …), so it runs in any process that reaches the
// system's broker: the ferry command, or a service that mounts [Handler].
//
// The page is plain HTML, CSS and JavaScript embedded in the binary; it
// loads nothing from elsewhere. One refresh every [Config].Interval builds
// a JSON snapshot that every connected browser receives over Server-Sent
// Events; nobody connected, nothing is refreshed.
//
// The dashboard changes the system (replaying and deleting dead letters,
// cancelling and retrying jobs) on POST requests only, and only from its
// own page: every request must carry a Host the server answers to (which
// defeats DNS rebinding), an Origin, when present, of that host (which
// defeats cross-site requests), and, for a POST, the server's random
// token, which only its own page holds. It listens on loopback unless
// told otherwise. See docs/dashboard.md.
package dashboard
