// Command image builds and pushes Meshwright's container images without a container engine: the manager for
// linux/amd64 and linux/arm64, and files-only images (OLM bundle, file-based catalog), each stored as an OCI image
// layout directory under bin/. The Makefile's docker-build, docker-push, bundle-build, bundle-push, catalog-build and
// catalog-push targets call it; internal/ociimage does the image work.
//
//	go run ./hack/image manager --out bin/image --version 0.1.0 --revision SHA --source URL
//	go run ./hack/image push    --layout bin/image --image registry.example.com/meshwright:v0.1.0
//	go run ./hack/image files   --out bin/bundle-image --labels-from bundle/metadata/annotations.yaml \
//	                            --dir bundle/manifests:/manifests --dir bundle/metadata:/metadata
//	go run ./hack/image extract --layout bin/image --platform linux/amd64 --file /manager --to bin/manager-amd64
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

// Exit codes: usage errors (a missing flag) differ from failures so that scripts can tell them apart.
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake in the command line, reported with exit code 2.
type usageError struct{ message string }

func (e usageError) Error() string { return e.message }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

var commands = map[string]func(ctx context.Context, args []string, stdout io.Writer) error{
	"manager": managerCommand,
	"push":    pushCommand,
	"files":   filesCommand,
	"extract": extractCommand,
}

// run executes one subcommand and reports its error on one line of stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || commands[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: go run ./hack/image manager|push|files|extract [flags] (-h for a subcommand's flags)")
		return exitUsage
	}
	err := commands[args[0]](ctx, args[1:], stdout)
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, oneLine(err.Error()))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "%s: %s\n", args[0], oneLine(err.Error()))
		return exitFailure
	}
}

// newFlags returns a flag set whose parse errors come back as usage errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	flags := flag.NewFlagSet(name, flag.ContinueOnError)
	flags.SetOutput(os.Stderr)
	return flags
}

func parse(flags *flag.FlagSet, args []string) error {
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{message: fmt.Sprintf("%s: %v", flags.Name(), err)}
	}
	if flags.NArg() > 0 {
		return usageError{message: fmt.Sprintf("%s: unexpected arguments %q", flags.Name(), flags.Args())}
	}
	return nil
}

func oneLine(text string) string { return strings.Join(strings.Fields(text), " ") }

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
