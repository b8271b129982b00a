package confcheck

import "vdeliver/lookup"

// entry is one key and value of a lookup table's source text, where it was written.
type entry struct {
	key, value string
	line       int
}

// readEntries returns the entries of a postmap(1) source file in file order, as written
// (keys not folded, duplicates kept): the check looks at what the administrator wrote.
// Lines that postmap skips are skipped here too; lookup reports them. Only for a table
// this process does not read itself (proxy:texthash: through proxymap(8)): otherwise the
// entries come with the read that opens the table (lookup's Entries options).
func readEntries(file string) ([]entry, error) {
	src, err := lookup.ReadSource(file, lookup.SourceOptions{NoFold: true, Dups: lookup.DupIgnore})
	if err != nil {
		return nil, err
	}
	out := make([]entry, len(src.Entries))
	for i, e := range src.Entries {
		out[i] = entry{key: e.Key, value: e.Value, line: e.Line}
	}
	return out, nil
}
