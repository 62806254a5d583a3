package httpapi

// hooks are the registration handler's seams for the self-test build's mutants, deliberately
// broken variants of the service (service/mutants): at each seam a mutant may change what the
// handler does. hooks_selftest.go asks the active mutant; hooks_production.go answers every
// seam with what the handler does anyway, in constants the compiler folds away together with
// the branches they guard, so that the handler's steps name no mutant and a production build
// links none of their code.
type hooks struct{}
