package config

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// sessionKeySize is the size of a session key: an AES-256 or
// XChaCha20-Poly1305 key.
const sessionKeySize = 32

// maxSecretFileSize bounds a secret file; real ones are a few hundred bytes.
const maxSecretFileSize = 64 << 10

// secretProblems records which secrets already have a problem reported, so
// that validation does not report them missing as well.
type secretProblems struct {
	clientSecret bool
	sessionKeys  bool
}

// loadSecrets fills OIDC.ClientSecret, Session.Keys and
// Session.RedisPassword from the environment or from the files the
// configuration names. The environment wins. Messages never include secret
// values.
func (c *Config) loadSecrets(getenv func(string) string) ([]error, secretProblems) {
	var errs []error
	var reported secretProblems

	if v := getenv(EnvOIDCClientSecret); v != "" {
		c.OIDC.ClientSecret = trimNewline(v)
	} else if c.OIDC.ClientSecretFile != "" {
		data, err := readSecretFile(c.OIDC.ClientSecretFile)
		if err == nil && len(trimNewline(string(data))) == 0 {
			err = errors.New("file is empty")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("oidc.client_secret_file: %w", err))
			reported.clientSecret = true
		} else {
			c.OIDC.ClientSecret = trimNewline(string(data))
		}
	}

	if v := getenv(EnvSessionKeys); v != "" {
		keys, err := parseKeys(strings.Split(v, ","), "entry")
		if err != nil {
			errs = append(errs, fmt.Errorf("session.keys: %s: %w", EnvSessionKeys, err))
			reported.sessionKeys = true
		} else {
			c.Session.Keys = keys
		}
	} else if c.Session.KeysFile != "" {
		keys, err := readKeysFile(c.Session.KeysFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("session.keys_file: %w", err))
			reported.sessionKeys = true
		} else {
			c.Session.Keys = keys
		}
	}

	if v := getenv(EnvRedisPassword); v != "" {
		c.Session.RedisPassword = trimNewline(v)
	}
	return errs, reported
}

// trimNewline removes the trailing newline editors and `echo` leave in
// secret files, and nothing else: other whitespace may belong to the secret.
func trimNewline(s string) string {
	return strings.TrimRight(s, "\r\n")
}

func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretFileSize {
		return nil, fmt.Errorf("%s: file is larger than %d bytes", path, maxSecretFileSize)
	}
	return data, nil
}

// readKeysFile reads one base64 key per line. Blank lines and lines starting
// with "#" are skipped.
func readKeysFile(path string) ([][]byte, error) {
	data, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxSecretFileSize+1)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	keys, err := parseKeys(lines, "line")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// parseKeys decodes base64 keys, skipping blank entries and "#" comments.
// unit ("line", "entry") names an item in messages, counted from 1.
func parseKeys(items []string, unit string) ([][]byte, error) {
	var keys [][]byte
	for i, item := range items {
		item = strings.TrimSpace(item)
		if item == "" || strings.HasPrefix(item, "#") {
			continue
		}
		key, err := decodeKey(item)
		if err != nil {
			return nil, fmt.Errorf("%s %d: %w", unit, i+1, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("holds no keys")
	}
	return keys, nil
}

// decodeKey decodes a 32-byte key written in standard or URL-safe base64,
// padded or not. Errors do not quote the key.
func decodeKey(s string) ([]byte, error) {
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	key, err := enc.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, errors.New("key is not valid base64")
	}
	if len(key) != sessionKeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), sessionKeySize)
	}
	return key, nil
}
