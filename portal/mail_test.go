package portal

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
)

// fakeSMTP is a minimal SMTP server without STARTTLS or AUTH: it records
// the envelope and the message of one session.
type fakeSMTP struct {
	ln       net.Listener
	from, to string
	data     strings.Builder
	done     chan struct{}
}

func newFakeSMTP(t *testing.T) *fakeSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSMTP{ln: ln, done: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *fakeSMTP) serve() {
	defer close(s.done)
	c, err := s.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	say("220 fake ESMTP")
	inData := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if inData {
			if line == ".\r\n" {
				inData = false
				say("250 queued")
				continue
			}
			s.data.WriteString(line)
			continue
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 fake")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			s.from = strings.TrimSpace(line[len("MAIL FROM:"):])
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			s.to = strings.TrimSpace(line[len("RCPT TO:"):])
			say("250 ok")
		case cmd == "DATA":
			inData = true
			say("354 go on")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

func TestSMTPSend(t *testing.T) {
	t.Parallel()
	s := newFakeSMTP(t)
	m := &SMTP{Addr: s.ln.Addr().String(), From: "privacy@acme.example"}
	if err := m.Send(context.Background(), "ada@example.com", "Your code: 123456", "Your code is:\n\n    123456\n"); err != nil {
		t.Fatal(err)
	}
	<-s.done
	msg := s.data.String()
	if s.from != "<privacy@acme.example>" || s.to != "<ada@example.com>" ||
		!strings.Contains(msg, "Subject: Your code: 123456\r\n") || !strings.Contains(msg, "To: ada@example.com\r\n") || !strings.Contains(msg, "\r\n\r\nYour code is:\r\n\r\n    123456\r\n") {
		t.Errorf("from %q to %q message:\n%s", s.from, s.to, msg)
	}
}

func TestSMTPSendFails(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	if err := (&SMTP{Addr: addr, From: "a@b.example"}).Send(context.Background(), "ada@example.com", "s", "b"); err == nil {
		t.Error("sending to a closed port succeeded")
	}
	if err := (&SMTP{Addr: "no-port", From: "a@b.example"}).Send(context.Background(), "ada@example.com", "s", "b"); err == nil {
		t.Error("an address without a port was accepted")
	}
}

func TestValidEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		" Ada@Example.COM ":     "ada@example.com",
		"a.b+c@sub.example.org": "a.b+c@sub.example.org",
		"":                      "",
		"ada":                   "",
		"ada@localhost":         "",
		"Ada <ada@example.com>": "",
		"ada@example.com\r\nBcc: eve@example.com": "",
		"ada@example.com,eve@example.com":         "",
		strings.Repeat("a", 250) + "@example.com": "",
	} {
		got, err := validEmail(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("validEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
