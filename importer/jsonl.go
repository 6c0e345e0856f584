package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/kithcdp/kith/ingest"
)

// rawCut is how much of an over-long line the rejects file keeps.
const rawCut = 1 << 10

// jsonl imports lines of Tracking API calls. A line may be as long as the
// event limit (plus its line ending); a longer one is rejected without
// being held in memory.
func (im *importer) jsonl() error {
	br := bufio.NewReaderSize(im.in, max(im.opts.Limits.MaxEventBytes+2, 4096))
	for n := int64(1); ; n++ {
		line, long, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("import: read line %d: %w", n, err)
		}
		if len(line) == 0 && !long && errors.Is(err, io.EOF) {
			return nil // the end, after a final newline
		}
		im.line()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		var rerr error
		switch {
		case long:
			rerr = im.reject(n, ingest.CodeEventTooLarge,
				fmt.Sprintf("the line is longer than %d bytes, the limit for an event", im.opts.Limits.MaxEventBytes), line)
		case len(bytes.TrimSpace(line)) > 0:
			rerr = im.add(n, line)
		}
		if rerr != nil {
			return rerr
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err := im.ctx.Err(); err != nil {
			return fmt.Errorf("import: stopped at line %d: %w", n, err)
		}
	}
}

// readLine reads one line without its line ending. The bytes are valid
// until the next read. A line that does not fit in br's buffer is skipped
// to its end; readLine then returns its first rawCut bytes and long=true.
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	line, err = br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		head := bytes.Clone(line[:rawCut])
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		return head, true, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), false, err
}
