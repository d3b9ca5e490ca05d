// Command corral-mutate is Corral's mutation check: it applies each
// mutation of a checked-in list (one single-rule change to the code, e.g.
// dropping a quorum guard) and runs the tests named for it, which must
// fail. A mutant whose tests still pass "survived": the rule it breaks is
// not guarded by any test.
//
// The real tree is never edited: each mutated file is written to a
// temporary directory and handed to `go test -overlay`. Before the
// mutants, the named tests are run once unmutated (they must pass, or a
// "killed" would mean nothing).
//
// Usage (from anywhere inside the module):
//
//	go run ./cmd/corral-mutate [-list FILE] [-only REGEXP] [-timeout D] [-p N]
//
// It prints one line per mutant and a last line
// "MUTATION total=N killed=N survived=N", and exits 1 when a mutant
// survived or was invalid (its snippet is not in the file exactly once, it
// does not build, or its pattern matches no test), 2 on usage errors or a
// failing baseline.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
