package discovery

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// KeySize is the length in bytes of the gossip encryption keys Keygen makes
// (AES-256).
const KeySize = 32

// Keygen returns a new random gossip encryption key, base64 encoded, for
// the serf { encrypt = "..." } setting (`corral keygen`).
func Keygen() (string, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// DecodeKey decodes a base64 gossip encryption key as made by Keygen. Keys
// of 16, 24 or 32 bytes (AES-128/192/256) are accepted, as memberlist does;
// anything else is an error wrapping ErrInvalidKey.
func DecodeKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not valid base64 (make one with `corral keygen`): %w", ErrInvalidKey, err)
	}
	if err := checkKeyLen(key); err != nil {
		return nil, err
	}
	return key, nil
}

func checkKeyLen(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	default:
		return fmt.Errorf("%w: key is %d bytes, want 32 (or 16/24); make one with `corral keygen`", ErrInvalidKey, len(key))
	}
}
