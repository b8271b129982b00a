// Command vdeliver delivers one message into a virtual mailbox, as Postfix's virtual(8)
// would, when run by pipe(8) or by hand. See README.md and docs/vdeliver.8.
//
// The command is internal/cli; this file only passes it the version.
package main

import "vdeliver/internal/cli"

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() { cli.Main(version) }
