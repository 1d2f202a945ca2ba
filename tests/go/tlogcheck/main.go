// Command tlogcheck is an independent check of civis's audit-log proofs and checkpoints, with
// code civis did not write: golang.org/x/mod/sumdb/note opens the signed checkpoint and
// golang.org/x/mod/sumdb/tlog (the Go checksum database's RFC 6962 log) hashes the entries,
// computes the roots of older sizes and checks the proofs (CheckRecord, CheckTree).
//
// Usage, from this directory: go run . -dir DIR, where DIR holds
//
//	key               the verifier key line
//	checkpoint        the signed note (c2sp.org/tlog-checkpoint)
//	entries           one line per log entry, standard base64 of its bytes, index order from 0
//	inclusion.json    [{"index":I,"size":N,"hashes":["<std base64>",...]}, ...]
//	consistency.json  [{"from":M,"size":N,"hashes":[...]}, ...]
//
// where N is the checkpoint's size. It prints one "ok: ..." line and exits 0, or prints what
// failed and exits 1.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Index  int64    `json:"index"`
	Size   int64    `json:"size"`
	Hashes []string `json:"hashes"`
}

type consistency struct {
	From   int64    `json:"from"`
	Size   int64    `json:"size"`
	Hashes []string `json:"hashes"`
}

// failures collects what went wrong, so that one run reports every bad proof.
var failures []string

func fail(format string, args ...any) {
	failures = append(failures, fmt.Sprintf(format, args...))
}

// fatal reports a problem that stops the check (unreadable input) and exits 1.
func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	dir := flag.String("dir", "", "directory holding key, checkpoint, entries, inclusion.json, consistency.json")
	flag.Parse()
	if *dir == "" {
		fatal("usage: go run . -dir DIR")
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(*dir, name))
		if err != nil {
			fatal("%v", err)
		}
		return b
	}

	// The signed checkpoint.
	vkey := strings.TrimSpace(string(read("key")))
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fatal("verifier key %q: %v", vkey, err)
	}
	verifiers := note.VerifierList(verifier)
	msg := read("checkpoint")
	n, err := note.Open(msg, verifiers)
	if err != nil {
		fatal("opening the checkpoint: %v", err)
	}
	origin, size, root, err := parseCheckpoint(n.Text)
	if err != nil {
		fatal("checkpoint text: %v", err)
	}
	if origin != verifier.Name() {
		fatal("checkpoint origin %q is not the key name %q", origin, verifier.Name())
	}

	// The entries, hashed and stored as tlog stores them.
	entries, err := parseEntries(read("entries"))
	if err != nil {
		fatal("entries: %v", err)
	}
	if int64(len(entries)) < size {
		fatal("entries: %d lines, the checkpoint's size is %d", len(entries), size)
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := int64(0); i < size; i++ {
		hs, err := tlog.StoredHashes(i, entries[i], reader)
		if err != nil {
			fatal("hashing entry %d: %v", i, err)
		}
		stored = append(stored, hs...)
	}
	treeHash := func(n int64) tlog.Hash {
		h, err := tlog.TreeHash(n, reader)
		if err != nil {
			fatal("tree hash of size %d: %v", n, err)
		}
		return h
	}
	if got := treeHash(size); got != root {
		fail("checkpoint root %v is not the root of the first %d entries (%v)", root, size, got)
	}

	// Inclusion proofs, against the leaf hash of the entry and the checkpoint root.
	var incl []inclusion
	if err := json.Unmarshal(read("inclusion.json"), &incl); err != nil {
		fatal("inclusion.json: %v", err)
	}
	tampered := false
	for _, p := range incl {
		proof, err := parseHashes(p.Hashes)
		switch {
		case err != nil:
			fail("inclusion proof for index %d: %v", p.Index, err)
		case p.Size != size:
			fail("inclusion proof for index %d: size %d, the checkpoint's is %d", p.Index, p.Size, size)
		case p.Index < 0 || p.Index >= size:
			fail("inclusion proof for index %d: outside the tree of size %d", p.Index, size)
		default:
			leaf := tlog.RecordHash(entries[p.Index])
			if err := tlog.CheckRecord(tlog.RecordProof(proof), size, root, p.Index, leaf); err != nil {
				fail("inclusion proof for index %d (size %d): %v", p.Index, size, err)
			}
			// Self-check: one altered hash must be refused.
			if !tampered && len(proof) > 0 {
				tampered = true
				bad := append(tlog.RecordProof(nil), proof...)
				bad[0][0] ^= 0x01
				if tlog.CheckRecord(bad, size, root, p.Index, leaf) == nil {
					fail("inclusion proof for index %d with its first hash altered was accepted", p.Index)
				}
			}
		}
	}

	// Consistency proofs, from the root computed here from entries[0..from].
	var cons []consistency
	if err := json.Unmarshal(read("consistency.json"), &cons); err != nil {
		fatal("consistency.json: %v", err)
	}
	tampered = false
	for _, p := range cons {
		proof, err := parseHashes(p.Hashes)
		switch {
		case err != nil:
			fail("consistency proof from %d: %v", p.From, err)
		case p.Size != size:
			fail("consistency proof from %d: size %d, the checkpoint's is %d", p.From, p.Size, size)
		case p.From < 1 || p.From > size:
			fail("consistency proof from %d: outside 1..%d", p.From, size)
		default:
			old := treeHash(p.From)
			if err := tlog.CheckTree(tlog.TreeProof(proof), size, root, p.From, old); err != nil {
				fail("consistency proof from %d to %d: %v", p.From, size, err)
			}
			if !tampered && len(proof) > 0 {
				tampered = true
				bad := append(tlog.TreeProof(nil), proof...)
				bad[0][0] ^= 0x01
				if tlog.CheckTree(bad, size, root, p.From, old) == nil {
					fail("consistency proof from %d with its first hash altered was accepted", p.From)
				}
			}
		}
	}

	// Forgeries. (a) One root byte changed, the signature lines kept.
	text := n.Text
	sigs := msg[len(text):]
	forgedRoot := root
	forgedRoot[0] ^= 0x01
	forgedText := fmt.Sprintf("%s\n%d\n%s\n", origin, size, forgedRoot) + strings.Join(strings.SplitAfter(text, "\n")[3:], "")
	if _, err := note.Open(append([]byte(forgedText), sigs...), verifiers); err == nil {
		fail("forgery (a): the checkpoint with a changed root byte was accepted")
	} else if !errors.As(err, new(*note.InvalidSignatureError)) {
		fail("forgery (a): refused, but not as an invalid signature: %v", err)
	}
	// (b) The same text signed by a fresh key of the same name.
	skey, _, err := note.GenerateKey(rand.Reader, verifier.Name())
	if err != nil {
		fatal("generating a key: %v", err)
	}
	forger, err := note.NewSigner(skey)
	if err != nil {
		fatal("forger: %v", err)
	}
	forged, err := note.Sign(&note.Note{Text: text}, forger)
	if err != nil {
		fatal("signing the forgery: %v", err)
	}
	if _, err := note.Open(forged, verifiers); err == nil {
		fail("forgery (b): the checkpoint signed by another key named %q was accepted", verifier.Name())
	}

	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Fprintln(os.Stderr, "FAIL: "+f)
		}
		os.Exit(1)
	}
	fmt.Printf("ok: size %d, %d inclusion proofs, %d consistency proofs, 2 forgeries refused\n", size, len(incl), len(cons))
}

// parseCheckpoint reads the three mandatory lines of a tlog checkpoint (tlog.ParseTree wants
// the go.sum origin line, so this is done here): origin, decimal size without leading
// zeros, base64 root of 32 bytes. Extension lines are ignored.
func parseCheckpoint(text string) (origin string, size int64, root tlog.Hash, err error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return "", 0, root, errors.New("fewer than three newline-terminated lines")
	}
	origin = lines[0]
	if origin == "" {
		return "", 0, root, errors.New("empty origin")
	}
	s := lines[1]
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return "", 0, root, fmt.Errorf("size %q is not a decimal without leading zeros", s)
	}
	size, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "", 0, root, fmt.Errorf("size %q: %v", s, err)
	}
	root, err = tlog.ParseHash(lines[2])
	if err != nil {
		return "", 0, root, fmt.Errorf("root %q: %v", lines[2], err)
	}
	return origin, size, root, nil
}

// parseEntries reads one standard-base64 line per entry (an empty entry is an empty line).
func parseEntries(b []byte) ([][]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	var out [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		e, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseHashes(ss []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(ss))
	for i, s := range ss {
		h, err := tlog.ParseHash(s)
		if err != nil {
			return nil, fmt.Errorf("hash %d %q: %v", i, s, err)
		}
		out = append(out, h)
	}
	return out, nil
}
