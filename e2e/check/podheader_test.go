package check

// testPodHeader is the header in which the tests' fake services name the pod that answered;
// the requests they are sent with name it in their Observe, as a target's podHeader does.
const testPodHeader = "X-Pod"
