package ferry

// Review12Gather exposes gather, ListServices' collection of discovery
// answers, to the review12 tests.
var Review12Gather = gather
