package render

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Istio's CRDs (files/crd-all.gen.yaml of the base chart, about 1 MB) are most of what a render decodes, and decoding
// them as YAML (sigs.k8s.io/yaml: go-yaml, then JSON, then unstructured) took about 45 ms of CPU at every start of the
// operator, while it also lists its informers and takes the Lease on the same CPUs. The file is generated, in plain
// block style: decodeBlockYAML decodes that style directly into the objects decodeDocument makes, several times
// faster. It accepts only what it is sure to read the way go-yaml does (block mappings and sequences, plain scalars
// that are clearly strings or decimal integers, true/false/null, quoted scalars, literal block scalars, empty flow
// collections) and returns errNotBlockYAML for anything else (anchors, tags, flow collections, folded scalars, plain
// scalars go-yaml might read as numbers, booleans or timestamps, comments inside scalars), which decodeDocument then
// decodes. The CRD files of every catalog version are decoded both ways in the tests, and must come out equal and
// without falling back: these files are the only input, and they are built into the binary.

// errNotBlockYAML says a document uses YAML that decodeBlockYAML leaves to go-yaml.
var errNotBlockYAML = errors.New("not plain block YAML")

// decodeCRDDocument decodes one document of a CRD file: decodeBlockYAML, else decodeDocument.
func decodeCRDDocument(doc []byte) (*unstructured.Unstructured, error) {
	obj, err := decodeBlockYAML(doc)
	if err == nil {
		if obj == nil {
			return nil, nil
		}
		return &unstructured.Unstructured{Object: obj}, nil
	}
	return decodeDocument(doc)
}

// blockLine is a line of a document: its indentation and its text after it.
type blockLine struct {
	indent int
	text   string // without the indentation; "" for a blank line
}

type blockParser struct {
	lines []blockLine
	pos   int
}

// decodeBlockYAML decodes a document whose top level is a block mapping; nil for a document of only comments.
func decodeBlockYAML(doc []byte) (map[string]any, error) {
	// Spaces at the end of a line are content in some scalars and not in others; go-yaml writes none.
	if !utf8.Valid(doc) || bytes.ContainsAny(doc, "\t\r") || bytes.Contains(doc, []byte(" \n")) || bytes.HasSuffix(doc, []byte(" ")) {
		return nil, errNotBlockYAML
	}
	raw := strings.Split(string(doc), "\n")
	p := &blockParser{lines: make([]blockLine, len(raw))}
	for i, l := range raw {
		text := strings.TrimLeft(l, " ")
		p.lines[i] = blockLine{indent: len(l) - len(text), text: text}
	}
	first, ok := p.next()
	if !ok {
		return nil, nil
	}
	if first.indent != 0 || first.text == "---" || first.text == "..." || strings.HasPrefix(first.text, "%") {
		return nil, errNotBlockYAML
	}
	v, err := p.mapping(0)
	if err == nil {
		if _, more := p.next(); more {
			err = errNotBlockYAML // something left at an indentation nothing above took
		}
	}
	if err != nil {
		line := ""
		if p.pos < len(p.lines) {
			line = p.lines[p.pos].text
		}
		return nil, fmt.Errorf("%w (line %d: %.60q)", err, p.pos+1, line)
	}
	return v, nil
}

// next skips blank lines and comment lines and returns the line at p.pos.
func (p *blockParser) next() (blockLine, bool) {
	for ; p.pos < len(p.lines); p.pos++ {
		l := p.lines[p.pos]
		if l.text != "" && l.text[0] != '#' {
			return l, true
		}
	}
	return blockLine{}, false
}

// isItem reports whether text starts a block sequence item.
func isItem(text string) bool {
	return text == "-" || strings.HasPrefix(text, "- ")
}

// node reads the block node whose first line is the next one, at indentation indent.
func (p *blockParser) node(indent int) (any, error) {
	l, _ := p.next()
	if isItem(l.text) {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

// value reads the value of a mapping key or sequence item at indentation parent whose text after the key (or the
// dash) is rest; nested blocks are on the lines below.
func (p *blockParser) value(rest string, parent int, sequenceAtSameIndent bool) (any, error) {
	if rest == "" {
		l, ok := p.next()
		switch {
		case !ok:
			return nil, nil
		case l.indent > parent:
			return p.node(l.indent)
		case sequenceAtSameIndent && l.indent == parent && isItem(l.text):
			return p.sequence(parent)
		}
		return nil, nil
	}
	switch rest[0] {
	case '\'':
		return p.singleQuoted(rest, parent)
	case '"':
		return p.doubleQuoted(rest, parent)
	case '|':
		return p.literal(rest, parent)
	case '[', '{':
		switch rest {
		case "[]":
			return []any{}, nil
		case "{}":
			return map[string]any{}, nil
		}
		return nil, errNotBlockYAML
	}
	return p.plain(rest, parent)
}

// mapping reads a block mapping whose keys are at indentation indent.
func (p *blockParser) mapping(indent int) (map[string]any, error) {
	out := map[string]any{}
	for {
		l, ok := p.next()
		if !ok || l.indent < indent {
			return out, nil
		}
		if l.indent > indent || isItem(l.text) {
			return nil, errNotBlockYAML
		}
		key, rest, err := splitKey(l.text)
		if err != nil {
			return nil, err
		}
		if _, dup := out[key]; dup {
			return nil, errNotBlockYAML
		}
		p.pos++
		v, err := p.value(rest, indent, true)
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
}

// sequence reads a block sequence whose dashes are at indentation indent.
func (p *blockParser) sequence(indent int) ([]any, error) {
	out := []any{}
	for {
		l, ok := p.next()
		if !ok || l.indent < indent || (l.indent == indent && !isItem(l.text)) {
			return out, nil
		}
		if l.indent > indent {
			return nil, errNotBlockYAML
		}
		content := strings.TrimLeft(l.text[1:], " ")
		if content == "" {
			p.pos++
			v, err := p.value("", indent, false)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		if isItem(content) || content[0] == '?' {
			return nil, errNotBlockYAML
		}
		if _, _, err := splitKey(content); err == nil {
			// "- key: value": a mapping whose keys are at the column of key. The line is read again as that
			// mapping's first line.
			col := l.indent + len(l.text) - len(content)
			p.lines[p.pos] = blockLine{indent: col, text: content}
			v, err := p.mapping(col)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		p.pos++
		v, err := p.value(content, indent, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// splitKey splits "key: rest" (or "key:") into the key and the trimmed rest; errNotBlockYAML if text is not a
// simple mapping entry.
func splitKey(text string) (key, rest string, err error) {
	switch text[0] {
	case '"', '\'':
		// A quoted key on one line.
		end := strings.IndexByte(text[1:], text[0])
		if end < 0 {
			return "", "", errNotBlockYAML
		}
		quoted, after := text[:end+2], text[end+2:]
		if after != ":" && !strings.HasPrefix(after, ": ") {
			return "", "", errNotBlockYAML
		}
		if strings.Contains(quoted[1:len(quoted)-1], `\`) || strings.Contains(quoted[1:len(quoted)-1], `'`) {
			return "", "", errNotBlockYAML
		}
		return quoted[1 : len(quoted)-1], strings.TrimLeft(after[1:], " "), nil
	}
	i := strings.Index(text, ": ")
	if i < 0 {
		if !strings.HasSuffix(text, ":") {
			return "", "", errNotBlockYAML
		}
		i = len(text) - 1
	}
	key = text[:i]
	if !plainString(key) || strings.Contains(key, " #") {
		return "", "", errNotBlockYAML
	}
	return key, strings.TrimLeft(text[i+1:], " "), nil
}

// plainString reports whether a plain scalar s is surely a string to go-yaml (YAML 1.1): it starts with a letter,
// or with a character that starts neither a number nor an indicator, and is none of the words go-yaml reads as a
// boolean or null in any case.
func plainString(s string) bool {
	if s == "" {
		return false
	}
	switch c := s[0]; {
	case c == '.':
		// ".5" and ".inf" are floats; ".metadata.name" is a string.
		if len(s) < 2 || !isLetter(s[1]) {
			return false
		}
	case c >= '0' && c <= '9':
		// A number or a timestamp of YAML 1.1 holds none but these characters; "0 < self" is a string.
		if strings.Trim(s, "0123456789abcdefABCDEFxXoO+-:._ tTzZ") == "" {
			return false
		}
	case strings.IndexByte("-+~?:,[]{}#&*!|>'\"%@`<=", c) >= 0:
		return false
	}
	switch strings.ToLower(s) {
	case "y", "yes", "n", "no", "true", "false", "on", "off", "null", ".inf", ".nan":
		return false
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// plain reads a plain scalar that starts with first, continued on the lines below indented more than parent.
func (p *blockParser) plain(first string, parent int) (any, error) {
	if !plainLine(first) {
		return nil, errNotBlockYAML
	}
	// Continuation lines fold into one space; a blank line among them is a line break.
	var b strings.Builder
	b.WriteString(first)
	for {
		next, blanks, ok := p.continuation(parent)
		if !ok {
			break
		}
		if !plainLine(next) {
			return nil, errNotBlockYAML
		}
		if blanks == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(strings.Repeat("\n", blanks))
		}
		b.WriteString(next)
	}
	s := b.String()
	if s == first {
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		if n, ok := decimal(s); ok {
			return n, nil
		}
	}
	if !plainString(s) {
		return nil, errNotBlockYAML
	}
	return s, nil
}

// plainLine reports whether a line of a plain scalar holds neither a comment nor what would make it a mapping key.
func plainLine(text string) bool {
	return text[0] != '#' && !strings.Contains(text, " #") && !strings.Contains(text, ": ") && !strings.HasSuffix(text, ":")
}

// decimal reads a decimal integer written as YAML writes one ("0", "-12", "345").
func decimal(s string) (int64, bool) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// quoted gathers the text of a quoted scalar that starts with first (its opening quote included) and may go on over
// the lines below, folded: a line break between two lines is a space, a blank line a line break. end finds the closing
// quote in a line (-1 if the scalar goes on); escapedBreak reports whether a line ends with an escaped line break,
// which joins it to the next without a space.
func (p *blockParser) quoted(first string, parent int, end func(string) int, escapedBreak func(string) bool) (string, error) {
	line := first[1:]
	var b strings.Builder
	for {
		if i := end(line); i >= 0 {
			b.WriteString(line[:i])
			if rest := strings.TrimLeft(line[i+1:], " "); rest != "" {
				return "", errNotBlockYAML // a comment or more after the closing quote
			}
			return b.String(), nil
		}
		joined := escapedBreak(line)
		if joined {
			b.WriteString(line[:len(line)-1])
		} else {
			b.WriteString(strings.TrimRight(line, " "))
		}
		next, blanks, ok := p.continuation(parent)
		if !ok {
			return "", errNotBlockYAML // the closing quote is missing
		}
		switch {
		case joined:
		case blanks == 0:
			b.WriteByte(' ')
		default:
			b.WriteString(strings.Repeat("\n", blanks))
		}
		line = next
	}
}

// continuation returns the next line of a multi-line scalar that is not blank, and how many blank lines came before
// it; ok is false, with p.pos at the line that ends the scalar, when no more line is indented more than parent.
func (p *blockParser) continuation(parent int) (line string, blanks int, ok bool) {
	for ; p.pos < len(p.lines); p.pos++ {
		l := p.lines[p.pos]
		if l.text == "" {
			blanks++
			continue
		}
		if l.indent <= parent {
			break
		}
		p.pos++
		return l.text, blanks, true
	}
	return "", 0, false
}

// singleQuoted reads a single-quoted scalar, in which two quotes in a row stand for one.
func (p *blockParser) singleQuoted(first string, parent int) (any, error) {
	s, err := p.quoted(first, parent, func(line string) int {
		for i := 0; i < len(line); i++ {
			if line[i] == '\'' {
				if i+1 < len(line) && line[i+1] == '\'' {
					i++
					continue
				}
				return i
			}
		}
		return -1
	}, func(string) bool { return false })
	if err != nil {
		return nil, err
	}
	return strings.ReplaceAll(s, "''", "'"), nil
}

// doubleQuoted reads a double-quoted scalar, with the escapes go-yaml writes.
func (p *blockParser) doubleQuoted(first string, parent int) (any, error) {
	s, err := p.quoted(first, parent, func(line string) int {
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '\\':
				i++
			case '"':
				return i
			}
		}
		return -1
	}, func(line string) bool {
		// An odd number of backslashes at the end escapes the line break.
		n := len(line) - len(strings.TrimRight(line, `\`))
		return n%2 == 1
	})
	if err != nil {
		return nil, err
	}
	return unescape(s)
}

// unescape resolves the escapes of a double-quoted scalar.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i >= len(s) {
			return "", errNotBlockYAML
		}
		switch s[i] {
		case '\\', '"', '/':
			b.WriteByte(s[i])
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case ' ':
			b.WriteByte(' ')
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[s[i]]
			if i+width >= len(s) {
				return "", errNotBlockYAML
			}
			r, err := strconv.ParseUint(s[i+1:i+1+width], 16, 32)
			if err != nil || !utf8.ValidRune(rune(r)) {
				return "", errNotBlockYAML
			}
			b.WriteRune(rune(r))
			i += width
		default:
			return "", errNotBlockYAML
		}
	}
	return b.String(), nil
}

// literal reads a literal block scalar ("|", with a chomping indicator "-" or "+" and an indentation indicator,
// in either order) of the key or item at indentation parent.
func (p *blockParser) literal(header string, parent int) (any, error) {
	chomp, indent := byte(0), -1
	for _, c := range []byte(header[1:]) {
		switch {
		case (c == '-' || c == '+') && chomp == 0:
			chomp = c
		case c >= '1' && c <= '9' && indent < 0:
			indent = parent + int(c-'0')
		default:
			return nil, errNotBlockYAML // a comment, or anything else
		}
	}
	var lines []string
	for ; p.pos < len(p.lines); p.pos++ {
		l := p.lines[p.pos]
		if l.text == "" {
			lines = append(lines, "")
			continue
		}
		if indent < 0 {
			if l.indent <= parent {
				break
			}
			indent = l.indent // detected from the first line that is not blank
		}
		if l.indent < indent {
			break
		}
		lines = append(lines, strings.Repeat(" ", l.indent-indent)+l.text)
	}
	// Blank lines after the scalar's last line are its trailing line breaks.
	content := len(lines)
	for content > 0 && lines[content-1] == "" {
		content--
	}
	if content == 0 {
		return nil, errNotBlockYAML
	}
	text := strings.Join(lines[:content], "\n")
	switch chomp {
	case '-':
		return text, nil
	case '+':
		return text + strings.Repeat("\n", len(lines)-content+1), nil
	}
	return text + "\n", nil
}
