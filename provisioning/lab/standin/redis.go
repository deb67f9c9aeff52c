package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runRedis serves a minimal RESP server: PING, ECHO, GET/SET/DEL, QUIT; enough for tcpSocket probes,
// redis-cli ping and cartservice's stand-in. Its port is 6379 (STANDIN_REDIS_PORT only for tests).
func runRedis(ctx context.Context, role string) error {
	listener, err := net.Listen("tcp", envOr("LISTEN_HOST", "")+":"+envOr("STANDIN_REDIS_PORT", "6379"))
	if err != nil {
		return err
	}
	log.Printf("%s: RESP on %s", role, listener.Addr())
	store := &redisStore{values: map[string]string{}}
	cpuMS := cpuPerRequest(role)
	go func() {
		<-ctx.Done()
		listener.Close()
	}()
	for {
		conn, err := listener.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go store.serve(conn, cpuMS)
	}
}

type redisStore struct {
	mu     sync.Mutex
	values map[string]string
}

func (s *redisStore) serve(conn net.Conn, cpuMS int) {
	defer conn.Close()
	reader := bufio.NewReader(conn)
	for {
		args, err := readCommand(reader)
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(conn, "-ERR %v\r\n", err)
			}
			return
		}
		if len(args) == 0 {
			continue
		}
		burnCPU(cpuMS)
		reply := s.execute(args)
		log.Printf("redis %s from %s: %s", strings.ToUpper(args[0]), conn.RemoteAddr(), strings.TrimSpace(reply))
		if _, err := io.WriteString(conn, reply); err != nil || strings.EqualFold(args[0], "QUIT") {
			return
		}
	}
}

func (s *redisStore) execute(args []string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch strings.ToUpper(args[0]) {
	case "PING":
		if len(args) > 1 {
			return bulk(args[1])
		}
		return "+PONG\r\n"
	case "ECHO":
		if len(args) != 2 {
			return "-ERR wrong number of arguments for 'echo' command\r\n"
		}
		return bulk(args[1])
	case "SET":
		if len(args) < 3 {
			return "-ERR wrong number of arguments for 'set' command\r\n"
		}
		s.values[args[1]] = args[2]
		return "+OK\r\n"
	case "GET":
		if len(args) != 2 {
			return "-ERR wrong number of arguments for 'get' command\r\n"
		}
		if value, ok := s.values[args[1]]; ok {
			return bulk(value)
		}
		return "$-1\r\n"
	case "DEL":
		removed := 0
		for _, key := range args[1:] {
			if _, ok := s.values[key]; ok {
				delete(s.values, key)
				removed++
			}
		}
		return ":" + strconv.Itoa(removed) + "\r\n"
	case "QUIT":
		return "+OK\r\n"
	}
	return fmt.Sprintf("-ERR unknown command '%s'\r\n", args[0])
}

func bulk(value string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(value), value) }

// readCommand reads one RESP array of bulk strings, or one inline command ("PING\r\n").
func readCommand(reader *bufio.Reader) ([]string, error) {
	line, err := readLine(reader)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return strings.Fields(line), nil
	}
	count, err := strconv.Atoi(line[1:])
	if err != nil || count < 0 || count > 1024 {
		return nil, fmt.Errorf("Protocol error: invalid multibulk length")
	}
	args := make([]string, 0, count)
	for range count {
		header, err := readLine(reader)
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimPrefix(header, "$"))
		if !strings.HasPrefix(header, "$") || err != nil || size < 0 || size > 1<<20 {
			return nil, fmt.Errorf("Protocol error: invalid bulk length")
		}
		data := make([]byte, size+2)
		if _, err := io.ReadFull(reader, data); err != nil {
			return nil, err
		}
		args = append(args, string(data[:size]))
	}
	return args, nil
}

func readLine(reader *bufio.Reader) (string, error) {
	line, err := reader.ReadString('\n')
	if err != nil {
		if line != "" && err == io.EOF {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// pingRedis is cartservice's stand-in for its Redis calls.
func pingRedis(ctx context.Context, address string) error {
	target, err := resolve(address)
	if err != nil {
		return err
	}
	dialer := net.Dialer{Timeout: backendTimeout()}
	conn, err := dialer.DialContext(ctx, "tcp", target)
	if err != nil {
		return fmt.Errorf("REDIS_ADDR (%s): %w", address, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(backendTimeout()))
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return fmt.Errorf("REDIS_ADDR (%s): %w", address, err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || strings.TrimSpace(reply) != "+PONG" {
		return fmt.Errorf("REDIS_ADDR (%s): no PONG (%q, %v)", address, reply, err)
	}
	return nil
}
