package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// table prints aligned columns.
type table struct {
	tw     *tabwriter.Writer
	header []string
	rows   [][]string
}

func newTable(w io.Writer, header ...string) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0), header: header}
}

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

// flush prints the header and the rows.
func (t *table) flush() error {
	t.write(t.header)
	for _, r := range t.rows {
		t.write(r)
	}
	return t.tw.Flush()
}

// flushNoHeader prints the rows only: for key/value listings.
func (t *table) flushNoHeader() error {
	for _, r := range t.rows {
		t.write(r)
	}
	return t.tw.Flush()
}

func (t *table) write(cells []string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func formatInt[T ~int32 | ~int64 | ~int](v *T) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(int64(*v), 10)
}
