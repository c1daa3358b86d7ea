package dlp

import "strings"

// keywords is an Aho-Corasick automaton over ASCII-lowercased bytes, as a
// full transition table: a stream's state is one int32.
type keywords struct {
	next [][256]int32
	out  []int32 // the words that end in each state
}

// maxKeywordStates bounds the automaton (256 KiB of table per 64 states).
const maxKeywordStates = 1 << 14

func newKeywords(words []string) *keywords {
	k := &keywords{next: make([][256]int32, 1), out: make([]int32, 1)}
	for _, w := range words {
		w = strings.ToLower(w)
		if w == "" {
			continue
		}
		st := int32(0)
		for i := 0; i < len(w); i++ {
			c := w[i]
			if k.next[st][c] == 0 {
				k.next = append(k.next, [256]int32{})
				k.out = append(k.out, 0)
				k.next[st][c] = int32(len(k.next) - 1)
			}
			st = k.next[st][c]
		}
		k.out[st]++
	}
	// Breadth first: fail links folded into the table.
	fail := make([]int32, len(k.next))
	var queue []int32
	for c := 0; c < 256; c++ {
		if s := k.next[0][c]; s != 0 {
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		k.out[st] += k.out[fail[st]]
		for c := 0; c < 256; c++ {
			s := k.next[st][c]
			if s == 0 {
				k.next[st][c] = k.next[fail[st]][c]
				continue
			}
			fail[s] = k.next[fail[st]][c]
			queue = append(queue, s)
		}
	}
	// Upper-case bytes go where their lower-case ones go.
	for st := range k.next {
		for c := 'A'; c <= 'Z'; c++ {
			k.next[st][c] = k.next[st][c+'a'-'A']
		}
	}
	return k
}

// states is the number of states words need (for Validate's bound).
func keywordStates(words []string) int {
	n := 1
	for _, w := range words {
		n += len(w)
	}
	return n
}

func (k *keywords) scan(st int32, p []byte, count *int) int32 {
	n := 0
	for _, c := range p {
		st = k.next[st][c]
		n += int(k.out[st])
	}
	*count += n
	return st
}
