package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DecodeConfig decodes a plugin's JSON config into v, a pointer to a struct
// with json tags. Empty config leaves v unchanged, so pre-fill defaults.
// Unknown keys, wrong types and trailing data are errors that name the key.
func DecodeConfig(raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return configError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid config: unexpected data after the config object")
	}
	return nil
}

// configError rewrites encoding/json errors into messages about config keys.
func configError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		key := typeErr.Field
		if key == "" {
			return fmt.Errorf("invalid config: expected an object, got %s", typeErr.Value)
		}
		return fmt.Errorf("invalid config: key %q: expected %s, got %s", key, typeErr.Type, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("invalid config: malformed JSON at offset %d: %w", syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("invalid config: unknown key %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return fmt.Errorf("invalid config: %w", err)
	}
}
