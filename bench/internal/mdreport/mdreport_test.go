package mdreport

import "testing"

func TestTable(t *testing.T) {
	if got, want := Table([]string{"a", "b"}, [][]string{{"x", "1"}}), "| a | b |\n| --- | ---: |\n| x | 1 |\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSplice(t *testing.T) {
	const prog = "bench/mda"
	beginMark, endMark := BeginMark(prog), EndMark
	if beginMark != "<!-- results: begin (written by bench/mda, do not edit by hand) -->" {
		t.Errorf("BeginMark = %q", beginMark)
	}
	doc := "# title\n\n" + beginMark + "\nold\n" + endMark + "\n\ntail\n"
	want := "# title\n\n" + beginMark + "\nnew\n" + endMark + "\n\ntail\n"
	if got := Splice(doc, "new\n", prog); got != want {
		t.Errorf("splice replaced:\n%s\nwant:\n%s", got, want)
	}
	if got, want := Splice("# title", "new\n", prog), "# title\n\n"+beginMark+"\nnew\n"+endMark+"\n"; got != want {
		t.Errorf("splice appended:\n%q\nwant:\n%q", got, want)
	}
	// Splicing twice gives the same document: the markers survive.
	once := Splice(doc, "new\n", prog)
	if got := Splice(once, "new\n", prog); got != once {
		t.Errorf("second splice changed the document:\n%s", got)
	}
}
