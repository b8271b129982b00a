package maincf

import (
	"fmt"

	"vdeliver/internal/rawfile"
)

// maxFile bounds what is read of main.cf: Postfix's own is about 30 kB with every
// parameter spelled out, and a file that claims more (a sparse file, /dev/zero) must not
// decide how much memory a delivery asks for.
const maxFile = 16 << 20

// readFile reads the whole file at path, with os.Open's errors for opening it and "read
// FILE: ..." for reading it, without the poller and in one buffer of its size
// (internal/rawfile): a delivery process reads main.cf once, at start-up.
func readFile(path string) ([]byte, error) {
	f, err := rawfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := rawfile.ReadAll(f, 512, maxFile)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}
