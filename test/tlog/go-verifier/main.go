// Command go-verifier checks a live chipledger transparency log with Go's own
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog: the packages that the C2SP
// signed-note and tlog-tiles specifications were written down from, and that Go's checksum
// database clients run. test/tlog/go-verifier.test.ts builds it (Debian's golang-go and
// golang-golang-x-mod-dev, GOPATH mode) and runs it against a server; it shares no code with
// chipledger, so a format that only our own code reads would fail here.
//
// What Go's packages do not cover is written here from the C2SP texts, and named as such:
// the checkpoint body (tlog-checkpoint: origin, size, base64 root; Go's tlog.ParseTree reads
// the checksum database's older form), entry bundles (tlog-tiles: big-endian uint16 length
// prefixes), cosignatures (tlog-cosignature: key type 0x04, which x/mod 0.7.0's note does not
// know) and the proof bundle (tlog-proof).
//
// Every check prints "ok <step>: …"; the first failure prints "FAIL <step>: …" and exits 1.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is fixed by C2SP tlog-tiles: 256 hashes a tile.
const tileHeight = 8

// fetchTimeout bounds one fetch, headers and body.
const fetchTimeout = 30 * time.Second

// responseBytesMax bounds what one fetch may read (a full entry bundle of big events is the largest).
const responseBytesMax = 64 << 20

type config struct {
	base    string
	key     string
	witness string
	token   string
	earlier string
	prove   []int64
}

func main() {
	var c config
	var prove string
	flag.StringVar(&c.base, "url", "", "the log's base URL, e.g. http://127.0.0.1:8080/v1/log")
	flag.StringVar(&c.key, "key", "", "the log's verifier key, name+hexid+base64")
	flag.StringVar(&c.witness, "witness", "", "a witness's cosignature verifier key (type 0x04) whose cosignature the checkpoint must carry")
	flag.StringVar(&c.token, "token", "", "bearer token for the entry bundles")
	flag.StringVar(&c.earlier, "earlier", "", "file holding an earlier signed checkpoint: the new one must be consistent with it")
	flag.StringVar(&prove, "prove", "", "comma-separated leaf indexes whose tlog-proof bundles to check against their entries")
	flag.Parse()
	if c.base == "" || c.key == "" {
		fail("usage", "-url and -key are required")
	}
	for _, field := range strings.Split(prove, ",") {
		if field == "" {
			continue
		}
		index, err := strconv.ParseInt(field, 10, 64)
		if err != nil || index < 0 {
			fail("usage", "-prove: %q is not a leaf index", field)
		}
		c.prove = append(c.prove, index)
	}
	run(c)
	fmt.Println("verified")
}

func fail(step, format string, args ...any) {
	fmt.Printf("FAIL %s: %s\n", step, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func ok(step, format string, args ...any) {
	fmt.Printf("ok %s: %s\n", step, fmt.Sprintf(format, args...))
}

func run(c config) {
	verifier, err := note.NewVerifier(c.key)
	if err != nil {
		fail("key", "%v", err)
	}
	client := &fetcher{base: strings.TrimSuffix(c.base, "/"), token: c.token, http: http.Client{Timeout: fetchTimeout}}

	raw := client.get("checkpoint", "checkpoint", false)
	checkpoint := openCheckpoint("checkpoint", raw, verifier)
	ok("checkpoint", "origin %s, size %d, root %s, signed by %s", checkpoint.origin, checkpoint.tree.N, checkpoint.tree.Hash, verifier.Name())
	if c.witness != "" {
		at := checkCosignature("cosignature", checkpoint, c.witness)
		ok("cosignature", "%s cosigned at %d", strings.SplitN(c.witness, "+", 2)[0], at)
	}

	// What a light client does: Go's tile reader rebuilds the signed root from the tiles.
	hashes := tlog.TileHashReader(checkpoint.tree, &tileReader{client})
	root, err := tlog.TreeHash(checkpoint.tree.N, hashes)
	if err != nil {
		fail("tiles", "%v", err)
	}
	if root != checkpoint.tree.Hash {
		fail("tiles", "the tiles hash to %s, the checkpoint says %s", root, checkpoint.tree.Hash)
	}
	ok("tiles", "tlog.TreeHash over the served tiles is the signed root")

	// What an auditor does: every entry, hashed and built into a tree by Go's code alone,
	// must give the signed root, and every served tile must be that tree's. The hashes a
	// TileHashReader returns are not enough on their own: x/mod's reader (0.7.0 and the
	// versions since, as far as we have read) authenticates a child tile only when the tiles
	// of the tree hash did not share a tile, so for a tree of 616 leaves it hands back a
	// changed level-0 hash as proven. Rebuilding the tree from the entries does not lean on it.
	entries := readEntries(client, checkpoint.tree.N)
	built := buildTree(entries)
	if root, err := tlog.TreeHash(checkpoint.tree.N, built); err != nil || root != checkpoint.tree.Hash {
		fail("entries", "the %d entries do not build the signed root (tlog.TreeHash: %s, %v)", len(entries), root, err)
	}
	ok("entries", "all %d entries, hashed with tlog.RecordHash and built with tlog.StoredHashes, give the signed root", len(entries))
	checkEveryTile(client, checkpoint.tree.N, built)

	checkInclusion(client, checkpoint.tree, entries, c.prove)

	if c.earlier != "" {
		text, err := os.ReadFile(c.earlier)
		if err != nil {
			fail("consistency", "reading %s: %v", c.earlier, err)
		}
		old := openCheckpoint("earlier checkpoint", text, verifier)
		checkConsistency(client, old.tree, checkpoint.tree)
	}

	for _, index := range c.prove {
		checkProofBundle(client, index, entries, verifier)
	}
}

// ---------------------------------------------------------------------------------------------
// Checkpoints (C2SP tlog-checkpoint inside a C2SP signed note, opened by Go's note.Open).

type checkpoint struct {
	origin string
	tree   tlog.Tree
	note   *note.Note
}

func openCheckpoint(step string, raw []byte, verifier note.Verifier) checkpoint {
	opened, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		fail(step, "note.Open: %v", err)
	}
	lines := strings.Split(opened.Text, "\n")
	// origin, size, root, any extension lines, and the empty string after the last newline.
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		fail(step, "the body is not origin, size and root lines: %q", opened.Text)
	}
	if lines[0] != verifier.Name() {
		fail(step, "origin %q is not the key's name %q", lines[0], verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail(step, "size line %q is not a decimal", lines[1])
	}
	rootBytes, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		fail(step, "root line %q is not base64 of 32 bytes", lines[2])
	}
	var root tlog.Hash
	copy(root[:], rootBytes)
	return checkpoint{origin: lines[0], tree: tlog.Tree{N: size, Hash: root}, note: opened}
}

// checkCosignature verifies a C2SP tlog-cosignature/v1 line by hand: x/mod 0.7.0's note
// package knows only key type 0x01. The key id is SHA-256(name || 0x0A || 0x04 || key)[:4],
// the signature line holds the 8-byte big-endian timestamp and the Ed25519 signature of
// "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint body.
func checkCosignature(step string, cp checkpoint, vkey string) uint64 {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		fail(step, "witness key %q is not name+hexid+base64", vkey)
	}
	name := parts[0]
	keyBytes, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(keyBytes) != 1+ed25519.PublicKeySize || keyBytes[0] != 0x04 {
		fail(step, "witness key is not a type 0x04 Ed25519 key")
	}
	id := sha256.Sum256(append([]byte(name+"\n"), keyBytes...))
	keyID := binary.BigEndian.Uint32(id[:4])
	if fmt.Sprintf("%08x", keyID) != parts[1] {
		fail(step, "witness key id %s is not SHA-256(name || 0x0A || key)[:4] = %08x", parts[1], keyID)
	}
	for _, sig := range cp.note.UnverifiedSigs {
		if sig.Name != name || sig.Hash != keyID {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig.Base64)
		if err != nil || len(raw) != 4+8+ed25519.SignatureSize {
			fail(step, "%s's line is not key id, timestamp and signature", name)
		}
		at := binary.BigEndian.Uint64(raw[4:12])
		message := fmt.Sprintf("cosignature/v1\ntime %d\n%s", at, cp.note.Text)
		if !ed25519.Verify(ed25519.PublicKey(keyBytes[1:]), []byte(message), raw[12:]) {
			fail(step, "%s's cosignature does not verify", name)
		}
		return at
	}
	fail(step, "the checkpoint carries no cosignature of %s", name)
	return 0
}

// ---------------------------------------------------------------------------------------------
// Tiles and entry bundles (C2SP tlog-tiles).

type fetcher struct {
	base  string
	token string
	http  http.Client
}

// get fetches base/path; a status other than 200 fails the step.
func (f *fetcher) get(step, path string, withToken bool) []byte {
	request, err := http.NewRequest("GET", f.base+"/"+path, nil)
	if err != nil {
		fail(step, "%v", err)
	}
	if withToken && f.token != "" {
		request.Header.Set("Authorization", "Bearer "+f.token)
	}
	response, err := f.http.Do(request)
	if err != nil {
		fail(step, "GET %s: %v", path, err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(io.LimitReader(response.Body, responseBytesMax))
	if err != nil {
		fail(step, "GET %s: %v", path, err)
	}
	if response.StatusCode != http.StatusOK {
		fail(step, "GET %s: %s: %s", path, response.Status, bytes.TrimSpace(body))
	}
	return body
}

// c2spPath spells a Go tile's path as C2SP tlog-tiles does: Go writes the height into the
// path (tile/8/L/N, tile/8/data/N), C2SP fixes it at 8 and calls the data "entries".
func c2spPath(t tlog.Tile) string {
	path := t.Path()
	if t.L == -1 {
		return strings.Replace(path, "tile/8/data/", "tile/entries/", 1)
	}
	return strings.Replace(path, "tile/8/", "tile/", 1)
}

// tileReader serves Go's tlog.TileHashReader from the log's HTTP tiles.
type tileReader struct{ f *fetcher }

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		data[i] = r.f.get("tiles", c2spPath(t), false)
	}
	return data, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// readEntries fetches every entry bundle of a tree of n leaves and splits it into entries.
func readEntries(f *fetcher, n int64) [][]byte {
	entries := make([][]byte, 0, n)
	for start := int64(0); start < n; start += 1 << tileHeight {
		width := n - start
		if width > 1<<tileHeight {
			width = 1 << tileHeight
		}
		path := c2spPath(tlog.Tile{H: tileHeight, L: -1, N: start >> tileHeight, W: int(width)})
		data := f.get("entries", path, true)
		for i := int64(0); i < width; i++ {
			if len(data) < 2 {
				fail("entries", "%s: entry %d: truncated length prefix", path, start+i)
			}
			length := int(binary.BigEndian.Uint16(data))
			if len(data) < 2+length {
				fail("entries", "%s: entry %d: truncated", path, start+i)
			}
			entries = append(entries, data[2:2+length])
			data = data[2+length:]
		}
		if len(data) != 0 {
			fail("entries", "%s: %d bytes after its %d entries", path, len(data), width)
		}
	}
	return entries
}

// memoryHashes is a tree's stored hashes in tlog's storage order.
type memoryHashes []tlog.Hash

func (m memoryHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	hashes := make([]tlog.Hash, len(indexes))
	for i, index := range indexes {
		if index < 0 || index >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d is not stored", index)
		}
		hashes[i] = m[index]
	}
	return hashes, nil
}

// buildTree appends the entries one by one, as tlog.StoredHashes does for Go's checksum database.
func buildTree(entries [][]byte) memoryHashes {
	var stored memoryHashes
	for index, entry := range entries {
		hashes, err := tlog.StoredHashes(int64(index), entry, stored)
		if err != nil {
			fail("entries", "tlog.StoredHashes at entry %d: %v", index, err)
		}
		stored = append(stored, hashes...)
	}
	return stored
}

// checkEveryTile compares every tile of the tree, at every level, full and partial, with the
// same tile cut from the tree rebuilt from the entries. tlog.NewTiles from 0 lists each partial
// tile at every width up to the tree's (Go's checksum database serves them all); C2SP
// tlog-tiles publishes only the widest, so that one is kept.
func checkEveryTile(f *fetcher, n int64, built memoryHashes) {
	var tiles []tlog.Tile
	for _, tile := range tlog.NewTiles(tileHeight, 0, n) {
		if last := len(tiles) - 1; last >= 0 && tiles[last].L == tile.L && tiles[last].N == tile.N {
			tiles[last] = tile
			continue
		}
		tiles = append(tiles, tile)
	}
	for _, tile := range tiles {
		want, err := tlog.ReadTileData(tile, built)
		if err != nil {
			fail("tile contents", "%s: %v", c2spPath(tile), err)
		}
		got := f.get("tile contents", c2spPath(tile), false)
		if !bytes.Equal(got, want) {
			fail("tile contents", "%s differs from the tree the entries build", c2spPath(tile))
		}
	}
	ok("tile contents", "all %d tiles are the tiles of the tree the entries build", len(tiles))
}

// ---------------------------------------------------------------------------------------------
// Proofs from the API, checked with Go's tlog.CheckRecord and tlog.CheckTree.

func proofHashes(f *fetcher, step, path string) []tlog.Hash {
	var body struct {
		Hashes []string `json:"hashes"`
	}
	if err := json.Unmarshal(f.get(step, path, false), &body); err != nil {
		fail(step, "%s: %v", path, err)
	}
	return decodeHashes(step, body.Hashes)
}

func decodeHashes(step string, lines []string) []tlog.Hash {
	hashes := make([]tlog.Hash, len(lines))
	for i, line := range lines {
		raw, err := base64.StdEncoding.Strict().DecodeString(line)
		if err != nil || len(raw) != tlog.HashSize {
			fail(step, "proof hash %d is not base64 of 32 bytes", i)
		}
		copy(hashes[i][:], raw)
	}
	return hashes
}

func checkInclusion(f *fetcher, tree tlog.Tree, entries [][]byte, extra []int64) {
	indexes := append([]int64{0, tree.N / 2, tree.N - 1}, extra...)
	for _, index := range indexes {
		if index >= tree.N {
			fail("inclusion", "leaf %d is past the tree's %d leaves", index, tree.N)
		}
		proof := proofHashes(f, "inclusion", fmt.Sprintf("proof/inclusion?index=%d&size=%d", index, tree.N))
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(entries[index])); err != nil {
			fail("inclusion", "leaf %d in %d: tlog.CheckRecord: %v", index, tree.N, err)
		}
	}
	ok("inclusion", "tlog.CheckRecord accepts the proofs of leaves %v in %d", indexes, tree.N)
}

func checkConsistency(f *fetcher, old, tree tlog.Tree) {
	if old.N > tree.N {
		fail("consistency", "the log shrank from %d to %d leaves", old.N, tree.N)
	}
	proof := proofHashes(f, "consistency", fmt.Sprintf("proof/consistency?from=%d&to=%d", old.N, tree.N))
	if err := tlog.CheckTree(proof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
		fail("consistency", "%d -> %d: tlog.CheckTree: %v", old.N, tree.N, err)
	}
	ok("consistency", "tlog.CheckTree: the checkpoint of %d leaves is consistent with the earlier one of %d", tree.N, old.N)
}

// checkProofBundle checks a C2SP tlog-proof: the first line "c2sp.org/tlog-proof@v1", an
// optional "extra <base64>" line, "index <N>", the inclusion proof's hashes one a line, an
// empty line, then the signed checkpoint; verified offline against the entry.
func checkProofBundle(f *fetcher, index int64, entries [][]byte, verifier note.Verifier) {
	step := fmt.Sprintf("tlog-proof %d", index)
	raw := f.get(step, fmt.Sprintf("events/%d/proof", index), false)
	split := bytes.Index(raw, []byte("\n\n"))
	if split < 0 {
		fail(step, "no empty line before the checkpoint")
	}
	lines := strings.Split(string(raw[:split]), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		fail(step, "first line %q", lines[0])
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		lines = lines[1:]
	}
	if len(lines) == 0 || lines[0] != fmt.Sprintf("index %d", index) {
		fail(step, "expected \"index %d\"", index)
	}
	proof := decodeHashes(step, lines[1:])
	cp := openCheckpoint(step, raw[split+2:], verifier)
	if index >= cp.tree.N {
		fail(step, "leaf %d is past its checkpoint's %d leaves", index, cp.tree.N)
	}
	if err := tlog.CheckRecord(proof, cp.tree.N, cp.tree.Hash, index, tlog.RecordHash(entries[index])); err != nil {
		fail(step, "tlog.CheckRecord: %v", err)
	}
	ok(step, "the entry is leaf %d of the signed tree of %d", index, cp.tree.N)
}
