// Command composecheck loads a compose file the way `docker compose config` does, with the
// compose tool's own library (compose-go): schema validation, interpolation, merge keys,
// normalisation and the consistency checks (dependencies, networks, volumes, profiles).
// For machines without Docker; scripts/check-manifests.sh runs it on docker-compose.test.yml.
//
//	go run ./composecheck -profile proctor ../docker-compose.test.yml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	var profiles multi
	flag.Var(&profiles, "profile", "profile to enable (repeatable), as `docker compose --profile`")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: composecheck [-profile NAME]... COMPOSE_FILE")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(
		[]string{flag.Arg(0)},
		cli.WithOsEnv,
		cli.WithProfiles(profiles),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	names := project.ServiceNames()
	sort.Strings(names)
	fmt.Printf("compose: %s is valid: %d services %v (profiles %v)\n", flag.Arg(0), len(names), names, []string(profiles))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "compose: invalid: %v\n", err)
	os.Exit(1)
}

type multi []string

func (m *multi) String() string     { return fmt.Sprint(*m) }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
