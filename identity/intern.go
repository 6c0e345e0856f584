package identity

import (
	"encoding/binary"
	"hash/maphash"
)

// The graph's identifiers are interned in pointer-free memory, so that ten
// million of them cost about a gigabyte at most and nothing for the
// garbage collector to scan: each is a fixed-size ident record in a chunk
// of 4,096, its value bytes in its chunk's byte arena, and a hash table of
// 8-byte entries finds it by type and value. An identifier once interned
// stays interned (detached, slot 0, when no profile holds it); admin
// removals are rare and a replay starts from an empty graph.

const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits
)

// ident is one interned identifier. Index 0 is never used, so 0 means
// "none" in links.
type ident struct {
	val  uint32 // offset of the value (uvarint length, bytes) in its chunk's arena
	typ  uint32 // index into Graph.types
	slot uint32 // the profile slot holding it; 0 when detached
	next uint32 // next identifier of the same profile; 0 ends the list
	pos  int64  // log position of the event that attached it
	at   int64  // that event's receivedAt, Unix nanoseconds
}

// chunk holds chunkLen idents and their values.
type chunk struct {
	ids  [chunkLen]ident
	vals []byte
}

// interned is the identifier store: records, values and the hash index.
type interned struct {
	chunks []*chunk
	n      uint32   // records in use, including the unused index 0
	table  []uint64 // hash<<32 | index; 0 is empty
	seed   maphash.Seed
}

func (in *interned) rec(i uint32) *ident { return &in.chunks[i>>chunkBits].ids[i&(chunkLen-1)] }

// value returns the bytes of identifier i's value (valid until the next
// add to the same chunk).
func (in *interned) value(i uint32) []byte {
	c := in.chunks[i>>chunkBits]
	off := c.ids[i&(chunkLen-1)].val
	n, w := binary.Uvarint(c.vals[off:])
	start := uint64(off) + uint64(w)
	return c.vals[start : start+n]
}

// hash combines the maphash of a value with its type.
func hash(typ uint32, vh uint64) uint64 {
	h := vh ^ (uint64(typ)+1)*0x9e3779b97f4a7c15
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	return h ^ h>>29
}

// find returns the index of identifier (typ, v), or 0.
func (in *interned) find(typ uint32, v string) uint32 {
	if len(in.table) == 0 {
		return 0
	}
	h := hash(typ, maphash.String(in.seed, v))
	mask := uint64(len(in.table) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		e := in.table[p]
		if e == 0 {
			return 0
		}
		if uint32(e>>32) == uint32(h>>32) {
			i := uint32(e)
			if in.rec(i).typ == typ && string(in.value(i)) == v {
				return i
			}
		}
	}
}

// add interns identifier (typ, v), which must not be interned yet, and
// returns its index.
func (in *interned) add(typ uint32, v string) uint32 {
	if in.n == 0 {
		in.n = 1 // index 0 means none
		in.seed = maphash.MakeSeed()
	}
	if (uint64(in.n)+1)*4 > uint64(len(in.table))*3 {
		in.grow()
	}
	i := in.n
	in.n++
	if int(i>>chunkBits) == len(in.chunks) {
		// Size the arena after the previous chunk's, to waste little.
		size := 16 << 10
		if n := len(in.chunks); n > 0 {
			size = max(size, len(in.chunks[n-1].vals)+len(in.chunks[n-1].vals)/32)
		}
		in.chunks = append(in.chunks, &chunk{vals: make([]byte, 0, size)})
	}
	c := in.chunks[i>>chunkBits]
	off := len(c.vals)
	c.vals = binary.AppendUvarint(c.vals, uint64(len(v)))
	c.vals = append(c.vals, v...)
	c.ids[i&(chunkLen-1)] = ident{val: uint32(off), typ: typ}
	in.place(hash(typ, maphash.String(in.seed, v)), i)
	return i
}

func (in *interned) place(h uint64, i uint32) {
	mask := uint64(len(in.table) - 1)
	p := h & mask
	for in.table[p] != 0 {
		p = (p + 1) & mask
	}
	in.table[p] = h>>32<<32 | uint64(i)
}

// grow doubles the hash table and places every identifier again.
func (in *interned) grow() {
	in.table = make([]uint64, max(2*len(in.table), 1024))
	for i := uint32(1); i < in.n; i++ {
		in.place(hash(in.rec(i).typ, maphash.Bytes(in.seed, in.value(i))), i)
	}
}
