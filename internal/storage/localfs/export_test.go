package localfs

// ListChunk is how many entries List reads from a directory at a time.
const ListChunk = listChunk
