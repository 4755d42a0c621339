package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decode strictly decodes exactly one YAML document into a Config. Unknown
// keys and values of the wrong type are reported one error each, naming the
// field path where it can be found.
func decode(data []byte) (cfg *Config, errs []error) {
	// yaml.v3 has panicked on malformed input in the past; a configuration
	// loader must report bad input, never crash on it.
	defer func() {
		if r := recover(); r != nil {
			cfg, errs = nil, []error{fmt.Errorf("yaml: cannot decode: %v", r)}
		}
	}()
	cfg = new(Config)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []error{errors.New("file is empty")}
		}
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			return nil, typeErrors(data, te)
		}
		return nil, []error{err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, []error{errors.New("yaml: file holds more than one document")}
	}
	return cfg, nil
}

// nodeRef is a key or value found on a line of the document.
type nodeRef struct {
	path  string    // field path, as in "backends[1].timeout"
	key   string    // the mapping key, if this is a key
	value string    // the scalar value, if this is a scalar value
	kind  yaml.Kind // the node's kind, if this is a value
}

// typeErrors turns yaml.v3's "line N: ..." messages into errors naming the
// field path on that line.
func typeErrors(data []byte, te *yaml.TypeError) []error {
	lines := map[int][]nodeRef{}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) == nil {
		indexNode(&root, "", lines)
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		errs = append(errs, typeError(msg, lines))
	}
	return errs
}

func typeError(msg string, lines map[int][]nodeRef) error {
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return errors.New("yaml: " + msg)
	}
	num, text, ok := strings.Cut(rest, ": ")
	line, err := strconv.Atoi(num)
	if !ok || err != nil {
		return errors.New("yaml: " + msg)
	}
	refs := lines[line]
	path := "-" // not found; "" is the document itself
	switch {
	case strings.HasPrefix(text, "field "):
		// "field foo not found in type config.Server"
		name, _, _ := strings.Cut(strings.TrimPrefix(text, "field "), " ")
		path = findRef(refs, func(r nodeRef) bool { return r.key == name })
		text = "unknown field"
	case strings.HasPrefix(text, "mapping key "):
		// "mapping key \"x\" already defined at line 3"
		if name, err := strconv.QuotedPrefix(strings.TrimPrefix(text, "mapping key ")); err == nil {
			name, _ = strconv.Unquote(name)
			path = findRef(refs, func(r nodeRef) bool { return r.key == name })
		}
	case strings.HasPrefix(text, "cannot unmarshal !!seq "):
		// Collections nested on one line: the decoder fails on the inner
		// one, since the outer ones are structs or lists that do decode.
		path = findLastRef(refs, func(r nodeRef) bool { return r.kind == yaml.SequenceNode })
	case strings.HasPrefix(text, "cannot unmarshal !!map "):
		path = findLastRef(refs, func(r nodeRef) bool { return r.kind == yaml.MappingNode })
	case strings.HasPrefix(text, "cannot unmarshal "):
		// "cannot unmarshal !!str `2x` into time.Duration"
		value := ""
		if i, j := strings.Index(text, "`"), strings.LastIndex(text, "`"); i >= 0 && j > i {
			value = text[i+1 : j]
		}
		if value != "" {
			path = findRef(refs, func(r nodeRef) bool { return r.kind == yaml.ScalarNode && r.value == value })
			if strings.HasSuffix(text, " into time.Duration") {
				text = fmt.Sprintf("%q is not a duration; write a number with a unit, as in 2s or 1m30s", value)
			}
		}
	}
	if strings.HasPrefix(text, "cannot unmarshal ") && strings.HasSuffix(text, " into time.Duration") {
		text = "must be a duration with a unit, as in 2s or 1m30s"
	}
	if path == "-" && len(refs) > 0 {
		path = refs[len(refs)-1].path
	}
	if path == "" || path == "-" {
		return fmt.Errorf("yaml: line %d: %s", line, text)
	}
	return fmt.Errorf("%s: line %d: %s", path, line, text)
}

// findRef returns the path of the first ref that matches, or "-".
func findRef(refs []nodeRef, match func(nodeRef) bool) string {
	for _, r := range refs {
		if match(r) {
			return r.path
		}
	}
	return "-"
}

// findLastRef returns the path of the last ref that matches, or "-".
func findLastRef(refs []nodeRef, match func(nodeRef) bool) string {
	for i := len(refs) - 1; i >= 0; i-- {
		if match(refs[i]) {
			return refs[i].path
		}
	}
	return "-"
}

// indexNode records, per line, the field paths of the keys and values found
// on it. Aliases are not followed, so the walk is bounded by the input.
func indexNode(n *yaml.Node, path string, lines map[int][]nodeRef) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			lines[c.Line] = append(lines[c.Line], nodeRef{path: path, value: scalarValue(c), kind: c.Kind})
			indexNode(c, path, lines)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			lines[k.Line] = append(lines[k.Line], nodeRef{path: p, key: k.Value})
			lines[v.Line] = append(lines[v.Line], nodeRef{path: p, value: scalarValue(v), kind: v.Kind})
			indexNode(v, p, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[c.Line] = append(lines[c.Line], nodeRef{path: p, value: scalarValue(c), kind: c.Kind})
			indexNode(c, p, lines)
		}
	}
}

func scalarValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}
