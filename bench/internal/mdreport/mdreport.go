// Package mdreport writes the Markdown results of a benchmark program into its README:
// the tables, and the generated block between two markers that a rerun replaces.
package mdreport

import "strings"

// Table renders a Markdown table, the first column left-aligned and the others right
// (they hold numbers); every row must have as many cells as head.
func Table(head []string, rows [][]string) string {
	var b strings.Builder
	line := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---"
		if i > 0 {
			sep[i] = "---:"
		}
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

// BeginMark is the marker before the generated part of the README of program (bench/mda,
// bench/postfix); EndMark the one after it.
func BeginMark(program string) string {
	return "<!-- results: begin (written by " + program + ", do not edit by hand) -->"
}

const EndMark = "<!-- results: end -->"

// Splice replaces what lies between program's markers in doc with results, or appends
// the markers and results when doc has none.
func Splice(doc, results, program string) string {
	begin := BeginMark(program)
	block := begin + "\n" + results + EndMark
	i := strings.Index(doc, begin)
	j := strings.Index(doc, EndMark)
	if i < 0 || j < i {
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + "\n" + block + "\n"
	}
	return doc[:i] + block + doc[j+len(EndMark):]
}
