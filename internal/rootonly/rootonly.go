// Package rootonly tells whether only root can change a file: the question a setuid-root
// vdeliver asks of everything that decides where mail lands and as whom (its binary,
// main.cf, the tables, the mailbox base), and that `vdeliver check` asks for it.
package rootonly

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"vdeliver/internal/rawfile"
	"vdeliver/lookup"
)

// Check returns an error unless only root can change path: the file itself owned by
// uid 0 and not writable by group or others. With chain, the same holds for every
// directory above it, both as written and with symbolic links resolved, except that a
// directory above may be world-writable when it is sticky (as /tmp). A file that anyone
// else can change, or replace through a directory above it, is theirs.
func Check(path string, chain bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := mode(path, fi, false); err != nil {
		return err
	}
	if !chain {
		return nil
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: not an absolute path", path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	for _, p := range []string{filepath.Clean(path), real} {
		for q := p; ; q = filepath.Dir(q) {
			fi, err := os.Lstat(q)
			if err != nil {
				return err
			}
			// A symbolic link cannot be changed, only replaced through its directory,
			// which the next step checks.
			if fi.Mode()&os.ModeSymlink == 0 {
				if err := mode(q, fi, q != p); err != nil {
					return err
				}
			}
			if q == "/" || q == "." {
				break
			}
		}
	}
	return nil
}

func mode(path string, fi os.FileInfo, stickyOK bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", path)
	}
	if st.Uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root", path, st.Uid)
	}
	if st.Mode&0o022 != 0 && !(stickyOK && fi.IsDir() && st.Mode&syscall.S_ISVTX != 0) {
		return fmt.Errorf("%s is writable by group or others (mode %04o)", path, st.Mode&0o7777)
	}
	return nil
}

// TableFiles returns the files a lookup table spec ("type:name", after proxy:) is read
// from, that exist, and the directory its name lives in: for a file-based type the name
// itself and what postmap(1) makes of it (name.db, name.cdb, name.lmdb...). Types whose
// name is not a file (static:, inline:, unix:...) give nothing; union: and pipemap: give
// the files of their tables. A relative name is made absolute against the working
// directory.
func TableFiles(spec string) (files []string, dir string) {
	typ, name, ok := strings.Cut(spec, ":")
	if !ok {
		return nil, ""
	}
	switch typ {
	case "proxy", "debug":
		return TableFiles(name)
	case "static", "inline", "unix", "tcp", "socketmap", "environ", "fail", "randmap", "internal":
		return nil, ""
	case "union", "pipemap":
		var out []string
		for _, s := range strings.FieldsFunc(strings.Trim(name, "{}"), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			f, d := TableFiles(s)
			out = append(out, f...)
			if d != "" {
				out = append(out, d)
			}
		}
		return out, ""
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, ""
	}
	for _, suffix := range []string{"", ".db", ".cdb", ".lmdb", ".dir", ".pag"} {
		if _, err := os.Lstat(abs + suffix); err == nil {
			files = append(files, abs+suffix)
		}
	}
	return files, filepath.Dir(abs)
}

// ListFiles returns, for one main.cf list (a table list, or a domain list with names,
// /files and type:table items), every file whose content the list depends on, each with
// the item of the list that brings it in: the tables' files and directories (TableFiles),
// each /file, and what a /file lists in turn (as deliver's domain lists read it, nested
// up to 10 deep; a file that cannot be read adds nothing more).
func ListFiles(list string) []Item {
	var out []Item
	listFiles(list, "", 0, &out)
	return out
}

// Item is one file a list depends on, and the item of the list (the outermost one) that
// names it.
type Item struct {
	Item, File string
}

func listFiles(list, outer string, depth int, out *[]Item) {
	for _, item := range lookup.SplitList(list) {
		item = strings.TrimLeft(item, "!")
		from := outer
		if from == "" {
			from = item
		}
		switch {
		case strings.HasPrefix(item, "/"):
			*out = append(*out, Item{from, item})
			if depth >= 10 {
				continue
			}
			b, err := rawfile.ReadFile(item, maxListFile)
			if err != nil {
				continue
			}
			var words []string
			for _, line := range strings.Split(string(b), "\n") {
				if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
					words = append(words, l)
				}
			}
			listFiles(strings.Join(words, " "), from, depth+1, out)
		case strings.Contains(item, ":") && !strings.HasPrefix(item, "["):
			files, dir := TableFiles(item)
			if dir != "" {
				*out = append(*out, Item{from, dir})
			}
			for _, f := range files {
				*out = append(*out, Item{from, f})
			}
		}
	}
}

// maxListFile bounds a /file of a list, as a delivery reads it.
const maxListFile = 16 << 20
