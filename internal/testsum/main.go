// Command testsum records the suites of `make test` and prints the one summary line a
// newcomer reads to see that everything ran and passed.
//
//	go test -json ... | testsum record DIR SUITE   # prints what go test prints, keeps the events
//	testsum summary DIR                            # one row per suite, then the closing line
//
// record writes the test2json events of one suite to DIR/SUITE.json and prints the output
// that a plain `go test` run shows: the package lines ("ok", "FAIL", build errors) and the
// output of failed tests only. go test's own exit status still decides (make runs the pipe
// with pipefail). Other suites record their results as "RESULT NAME" lines (pass, fail,
// skip) in DIR/SUITE.txt. summary counts tests and subtests, lists every skipped test, and
// ends with "test: N passed, N failed, N skipped".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output events
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "record":
		if len(os.Args) != 4 {
			usage()
		}
		err = record(os.Stdin, os.Stdout, os.Args[2], os.Args[3])
	case "summary":
		if len(os.Args) != 3 {
			usage()
		}
		var ok bool
		ok, err = summary(os.Stdout, os.Args[2])
		if err == nil && !ok {
			os.Exit(1)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsum: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: testsum record DIR SUITE < go-test-json | testsum summary DIR")
	os.Exit(1)
}

type key struct{ pkg, test string }

func record(in io.Reader, out io.Writer, dir, suite string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, suite+".json"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	held := map[key][]string{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		w.Write(line)
		w.WriteByte('\n')
		var e event
		if json.Unmarshal(line, &e) != nil {
			// Not an event: go test printed it itself (a setup failure). Show it.
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		k := key{e.Package, e.Test}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Test == "" && e.Action == "output":
			// Package lines: "ok", "FAIL", "PASS", panics outside a test.
			if !strings.HasPrefix(e.Output, "=== ") && e.Output != "PASS\n" {
				fmt.Fprint(out, e.Output)
			}
		case e.Action == "output":
			held[k] = append(held[k], e.Output)
		case e.Action == "fail":
			fmt.Fprint(out, strings.Join(held[k], ""))
			delete(held, k)
		case e.Action == "pass" || e.Action == "skip":
			delete(held, k)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return w.Flush()
}

type counts struct{ pass, fail, skip int }

func summary(out io.Writer, dir string) (bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return false, err
	}
	sort.Strings(files)
	var total counts
	var skipped, failed []string
	var rows []string
	for _, name := range files {
		suite := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
		var c counts
		note := func(action, what string) {
			switch action {
			case "pass":
				c.pass++
			case "fail":
				c.fail++
				failed = append(failed, suite+": "+what)
			case "skip":
				c.skip++
				skipped = append(skipped, suite+": "+what)
			}
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" {
				continue
			}
			switch filepath.Ext(name) {
			case ".json":
				var e event
				if json.Unmarshal([]byte(line), &e) != nil || e.Test == "" {
					continue
				}
				note(e.Action, e.Package+" "+e.Test)
			case ".txt":
				action, what, _ := strings.Cut(line, " ")
				note(action, what)
			}
		}
		rows = append(rows, fmt.Sprintf("  %-14s %6d passed, %d failed, %d skipped", suite, c.pass, c.fail, c.skip))
		total.pass += c.pass
		total.fail += c.fail
		total.skip += c.skip
	}
	if len(rows) == 0 {
		return false, fmt.Errorf("no suite recorded in %s", dir)
	}
	fmt.Fprintln(out, "make test, by suite (tests and subtests; gofmt, go vet, staticcheck and go mod tidy ran clean before them):")
	for _, r := range rows {
		fmt.Fprintln(out, r)
	}
	for _, s := range skipped {
		fmt.Fprintf(out, "  skipped: %s\n", s)
	}
	for _, s := range failed {
		fmt.Fprintf(out, "  failed: %s\n", s)
	}
	fmt.Fprintf(out, "test: %d passed, %d failed, %d skipped\n", total.pass, total.fail, total.skip)
	return total.fail == 0 && total.pass > 0, nil
}
