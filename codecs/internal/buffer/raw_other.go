//go:build !unix

package buffer

// rawReads says whether this system reads sockets through their descriptor:
// not here; every read goes through the connection's Read method.
const rawReads = false

func readFD(uintptr, []byte) (int, bool, error) { return 0, false, nil }
