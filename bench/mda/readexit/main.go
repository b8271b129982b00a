// Command readexit reads standard input to the end and exits 0: the floor the benchmark measures
// every Go delivery agent against (the cost of starting a Go process and reading a message),
// so vdeliver's own work shows as the distance from it.
package main

import (
	"io"
	"os"
)

func main() {
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		os.Exit(75)
	}
}
