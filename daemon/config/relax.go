package config

import (
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// relaxOneLineBlocks lets a block or object hold several items on one line,
// as DESIGN §9 writes them: `ports { http = 4780  raft = 4781 }`. Native HCL2
// requires newlines there (a one-line block may hold one attribute only), so
// before parsing we turn the blank that precedes each such item, the blank
// after its `{` and the blank before its `}` into newlines (also for a
// one-line block that holds a nested block: `plugin "x" { config { } }`).
//
// Only a single whitespace byte is ever replaced by '\n', so byte offsets are
// unchanged; fixPositions maps diagnostics back to the original lines and
// columns. Source that does not need the rewrite is returned as is.
func relaxOneLineBlocks(src []byte, filename string) []byte {
	toks, diags := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return src // let the parser report it
	}
	var out []byte
	setNewline := func(off int) {
		if off < 0 || off >= len(src) || (src[off] != ' ' && src[off] != '\t') {
			return
		}
		if out == nil {
			out = append([]byte(nil), src...)
		}
		out[off] = '\n'
	}

	type pair struct {
		open    int  // byte offset of '{'
		touched bool // an item inside was split off
	}
	var stack []pair
	skip := 0 // tokens before this index are labels of a header already seen
	for i, tok := range toks {
		switch tok.Type {
		case hclsyntax.TokenOBrace:
			stack = append(stack, pair{open: tok.Range.Start.Byte})
			continue
		case hclsyntax.TokenCBrace:
			if len(stack) == 0 {
				continue
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if top.touched {
				setNewline(top.open + 1)
				if prev := toks[i-1].Type; prev != hclsyntax.TokenNewline && prev != hclsyntax.TokenComment {
					setNewline(tok.Range.Start.Byte - 1)
				}
			}
			continue
		}
		if len(stack) == 0 || i == 0 || i < skip {
			continue
		}
		end, ok := startsItem(toks, i)
		if !ok {
			continue
		}
		skip = end
		if toks[end].Type == hclsyntax.TokenOBrace {
			// A nested block may not sit in a one-line block either.
			stack[len(stack)-1].touched = true
		}
		switch toks[i-1].Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenComma, hclsyntax.TokenNewline, hclsyntax.TokenComment:
			continue
		}
		setNewline(tok.Range.Start.Byte - 1)
		stack[len(stack)-1].touched = true
	}
	if out == nil {
		return src
	}
	return out
}

// startsItem reports whether toks[i] begins an attribute (`name =`,
// `"name" =`) or a block header (`name "label"... {`), and the index of the
// `=` or `{` that ends the item's head.
func startsItem(toks hclsyntax.Tokens, i int) (int, bool) {
	next := func(j int) hclsyntax.TokenType {
		if j < len(toks) {
			return toks[j].Type
		}
		return hclsyntax.TokenEOF
	}
	// skipQuoted returns the index after a quoted string starting at j, or -1.
	skipQuoted := func(j int) int {
		if next(j) != hclsyntax.TokenOQuote {
			return -1
		}
		j++
		if next(j) == hclsyntax.TokenQuotedLit {
			j++
		}
		if next(j) != hclsyntax.TokenCQuote {
			return -1
		}
		return j + 1
	}
	switch toks[i].Type {
	case hclsyntax.TokenIdent:
		j := i + 1
		if next(j) == hclsyntax.TokenEqual {
			return j, true
		}
		for {
			switch next(j) {
			case hclsyntax.TokenOBrace:
				return j, true
			case hclsyntax.TokenIdent:
				j++
			case hclsyntax.TokenOQuote:
				if j = skipQuoted(j); j < 0 {
					return 0, false
				}
			default:
				return 0, false
			}
		}
	case hclsyntax.TokenOQuote:
		j := skipQuoted(i)
		return j, j > 0 && next(j) == hclsyntax.TokenEqual
	}
	return 0, false
}

// fixPositions rewrites the line and column of every diagnostic range in
// filename from its byte offset into the original source.
func fixPositions(diags hcl.Diagnostics, filename string, src []byte) {
	fix := func(r *hcl.Range) {
		if r == nil || r.Filename != filename {
			return
		}
		r.Start = posAt(src, r.Start.Byte)
		r.End = posAt(src, r.End.Byte)
	}
	for _, d := range diags {
		fix(d.Subject)
		fix(d.Context)
	}
}

func posAt(src []byte, off int) hcl.Pos {
	if off > len(src) {
		off = len(src)
	}
	pos := hcl.Pos{Line: 1, Column: 1, Byte: off}
	for i := 0; i < off; {
		r, size := utf8.DecodeRune(src[i:])
		i += size
		if r == '\n' {
			pos.Line++
			pos.Column = 1
		} else {
			pos.Column++
		}
	}
	return pos
}
