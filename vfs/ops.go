package vfs

import "strings"

// Op is what a command does to the path it names, as path rules grant it.
type Op uint8

// The operations of path rules.
const (
	OpList   Op = 1 << iota // see a directory or a file's facts: CWD, LIST, NLST, MLSD, MLST, STAT, SIZE, MDTM
	OpRead                  // download: RETR
	OpWrite                 // upload or change: STOR, STOU, APPE, SITE CHMOD
	OpDelete                // DELE, RMD
	OpRename                // RNFR (the source), RNTO (the target)
	OpMkdir                 // MKD
)

var opNames = []struct {
	op   Op
	name string
}{{OpList, "list"}, {OpRead, "read"}, {OpWrite, "write"}, {OpDelete, "delete"}, {OpRename, "rename"}, {OpMkdir, "mkdir"}}

// String names the operations in op, "read|write" for several.
func (op Op) String() string {
	var parts []string
	for _, n := range opNames {
		if op&n.op != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// ParseOp reads one operation name as configuration spells it.
func ParseOp(s string) (Op, bool) {
	for _, n := range opNames {
		if n.name == s {
			return n.op, true
		}
	}
	return 0, false
}

// verbOps are the path-carrying commands and what they do to their path.
var verbOps = map[string]Op{
	"CWD": OpList, "XCWD": OpList, "LIST": OpList, "NLST": OpList, "MLSD": OpList, "MLST": OpList,
	"STAT": OpList, "SIZE": OpList, "MDTM": OpList,
	"RETR": OpRead,
	// The digests read the whole file.
	"HASH": OpRead, "XCRC": OpRead, "XMD5": OpRead, "XSHA1": OpRead, "XSHA256": OpRead,
	"STOR": OpWrite, "STOU": OpWrite, "APPE": OpWrite,
	"DELE": OpDelete, "RMD": OpDelete, "XRMD": OpDelete,
	"RNFR": OpRename, "RNTO": OpRename,
	"MKD": OpMkdir, "XMKD": OpMkdir,
}

// VerbOp says what verb does to the path it names; false for a verb that
// names no path.
func VerbOp(verb string) (Op, bool) {
	op, ok := verbOps[verb]
	return op, ok
}
