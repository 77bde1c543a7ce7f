// Command etcd-cluster-bench is the etcd side of keel's cluster benchmark: a
// number of writers putting 256-byte values into a 3-member etcd cluster
// through etcd's own Go client (go.etcd.io/etcd/clientv3 of Debian's
// golang-etcd-server-dev, etcd 3.4), measuring throughput and per-request
// latency. keel's bench/cluster.bench.cpp measures the same on three keel
// nodes; both programs print the same JSON line (contract: docs/benchmarks.md,
// section "cluster"). The cluster itself is started by cluster.sh beside this
// file.
//
// How it drives etcd, and why:
//
//   - Connections: like etcd's own `benchmark put`, whose defaults are
//     --conns=1 --clients=1, the writers share clientv3.Client connections
//     round-robin; -conns defaults to 1, so all writers multiplex one gRPC
//     connection, as `benchmark --conns=1 --clients=N put` does.
//   - Leader only: keel's writers call update() on the leader, so by default
//     the writers' connections go to the leader alone (`benchmark
//     --target-leader`), found with a Status call on every endpoint. Without
//     it clientv3 3.4 spreads requests over all members, and followers
//     forward them.
//   - Keys: as on keel's side, each writer has keys of its own and cycles
//     through -keys-per-writer of them: writer w's i-th put goes to
//     "w<w>/<i mod keys-per-writer>". (keel's update() checks versions, so
//     its writers must not race on one object; etcd's put does not care,
//     but the same keys keep the two stores' sizes alike.) The value is
//     -value-bytes random bytes, the same for every put.
//   - Durability: the cluster runs with etcd's defaults, so a put returns
//     after the leader and a quorum have fsynced its WAL entry.
//
// Timing: before the clock starts every connection makes one put (so the
// gRPC connections are up), and all writers are started and wait at a
// barrier. Then each writer puts in a loop, one request at a time, until
// -seconds have passed (a put started before then still counts) or, with
// -ops, until the writers together have issued that many. ops_per_s is the
// puts completed over the wall time from the barrier to the last writer's
// return; p50_ms and p99_ms are nearest-rank percentiles of every put's
// latency (call to return, in milliseconds). A failed put fails the run: the
// program exits non-zero and prints no figure.
//
// Build offline and run against a cluster:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o etcd-cluster-bench .
//	./cluster.sh /var/tmp -- ./etcd-cluster-bench -writers 64 -seconds 3
//
// -endpoints defaults to $ETCD_ENDPOINTS, which cluster.sh sets for its
// command.
//
// Output, exactly one line on stdout (progress and errors go to stderr):
//
//	{"side":"etcd","writers":<N>,"ops_per_s":<puts/s>,"p50_ms":<ms>,"p99_ms":<ms>}
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc/grpclog"
)

type options struct {
	endpoints    []string
	writers      int
	conns        int
	seconds      float64
	ops          int64
	valueBytes   int
	keys         int // per writer
	targetLeader bool
	timeout      time.Duration
}

func main() {
	var o options
	var endpoints string
	flag.StringVar(&endpoints, "endpoints", os.Getenv("ETCD_ENDPOINTS"),
		"comma-separated client URLs of the cluster's members (default $ETCD_ENDPOINTS)")
	flag.IntVar(&o.writers, "writers", 1, "concurrent writers, each with one put in flight")
	flag.IntVar(&o.conns, "conns", 1, "client connections the writers share round-robin (etcd benchmark's --conns)")
	flag.Float64Var(&o.seconds, "seconds", 1, "how long the writers put, in seconds (ignored with -ops)")
	flag.Int64Var(&o.ops, "ops", 0, "if > 0: stop after this many puts in total instead of after -seconds")
	flag.IntVar(&o.valueBytes, "value-bytes", 256, "bytes per value")
	flag.IntVar(&o.keys, "keys-per-writer", 1000, "keys each writer cycles through")
	flag.BoolVar(&o.targetLeader, "target-leader", true, "connect the writers to the leader only")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on a single put after this long")
	flag.Parse()

	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.endpoints = append(o.endpoints, e)
		}
	}
	if err := o.validate(); err != nil {
		fail("%v", err)
	}

	// clientv3 3.4 logs every reconnect through grpclog; keep warnings and
	// errors only.
	clientv3.SetLogger(grpclog.NewLoggerV2(ioutil.Discard, os.Stderr, os.Stderr))

	r, err := run(o)
	if err != nil {
		fail("%v", err)
	}
	fmt.Printf("{\"side\":\"etcd\",\"writers\":%d,\"ops_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
		o.writers, r.opsPerSec, r.p50, r.p99)
}

func (o *options) validate() error {
	switch {
	case len(o.endpoints) == 0:
		return errors.New("no endpoints: pass -endpoints or set ETCD_ENDPOINTS (cluster.sh does)")
	case o.writers < 1:
		return fmt.Errorf("-writers must be at least 1, got %d", o.writers)
	case o.conns < 1:
		return fmt.Errorf("-conns must be at least 1, got %d", o.conns)
	case o.ops <= 0 && !(o.seconds > 0):
		return fmt.Errorf("-seconds must be positive (or set -ops), got %g", o.seconds)
	case o.valueBytes < 1:
		return fmt.Errorf("-value-bytes must be at least 1, got %d", o.valueBytes)
	case o.keys < 1:
		return fmt.Errorf("-keys-per-writer must be at least 1, got %d", o.keys)
	}
	return nil
}

type result struct {
	opsPerSec float64
	p50, p99  float64 // milliseconds
}

func run(o options) (result, error) {
	target := o.endpoints
	if o.targetLeader {
		leader, err := findLeader(o.endpoints, o.timeout)
		if err != nil {
			return result{}, err
		}
		target = []string{leader}
	}

	conns := make([]*clientv3.Client, o.conns)
	for i := range conns {
		c, err := clientv3.New(clientv3.Config{Endpoints: target, DialTimeout: o.timeout})
		if err != nil {
			return result{}, fmt.Errorf("connecting to %v: %v", target, err)
		}
		defer c.Close()
		conns[i] = c
	}

	value := make([]byte, o.valueBytes)
	if _, err := rand.Read(value); err != nil {
		return result{}, fmt.Errorf("making the value: %v", err)
	}
	val := string(value)

	// One put per connection so every gRPC connection is up before the clock.
	for i, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		_, err := c.Put(ctx, "warm-up", val)
		cancel()
		if err != nil {
			return result{}, fmt.Errorf("warm-up put on connection %d: %v", i, err)
		}
	}

	var (
		start    = make(chan struct{})
		wg       sync.WaitGroup
		issued   int64
		failOnce sync.Once
		firstErr error
		failed   int32
		lat      = make([][]time.Duration, o.writers)
		t0       time.Time
		deadline time.Time
	)
	for w := 0; w < o.writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := conns[w%len(conns)]
			samples := make([]time.Duration, 0, 4096)
			prefix := "w" + strconv.Itoa(w) + "/"
			<-start
			for i := 0; atomic.LoadInt32(&failed) == 0; i++ {
				if o.ops > 0 {
					if atomic.AddInt64(&issued, 1) > o.ops {
						break
					}
				} else if !time.Now().Before(deadline) {
					break
				}
				key := prefix + strconv.Itoa(i%o.keys)
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				begin := time.Now()
				_, err := c.Put(ctx, key, val)
				d := time.Since(begin)
				cancel()
				if err != nil {
					failOnce.Do(func() { firstErr = fmt.Errorf("writer %d: put %s: %v", w, key, err) })
					atomic.StoreInt32(&failed, 1)
					break
				}
				samples = append(samples, d)
			}
			lat[w] = samples
		}(w)
	}
	t0 = time.Now()
	deadline = t0.Add(time.Duration(o.seconds * float64(time.Second)))
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	if firstErr != nil {
		return result{}, firstErr
	}

	var all []time.Duration
	for _, s := range lat {
		all = append(all, s...)
	}
	if len(all) == 0 {
		return result{}, errors.New("no put completed")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := result{
		opsPerSec: float64(len(all)) / elapsed.Seconds(),
		p50:       ms(percentile(all, 0.50)),
		p99:       ms(percentile(all, 0.99)),
	}
	fmt.Fprintf(os.Stderr, "etcd: writers=%d conns=%d target=%s puts=%d seconds=%.3f ops_per_s=%.1f p50_ms=%.3f p99_ms=%.3f\n",
		o.writers, o.conns, strings.Join(target, ","), len(all), elapsed.Seconds(), r.opsPerSec, r.p50, r.p99)
	return r, nil
}

// findLeader asks every endpoint for its status and returns the client URL
// of the member that is the leader, retrying for up to timeout while the
// cluster has none (right after start, or during an election).
func findLeader(endpoints []string, timeout time.Duration) (string, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: timeout})
	if err != nil {
		return "", fmt.Errorf("connecting to %v: %v", endpoints, err)
	}
	defer c.Close()
	stop := time.Now().Add(timeout)
	var last error
	for time.Now().Before(stop) {
		for _, e := range endpoints {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s, err := c.Status(ctx, e)
			cancel()
			if err != nil {
				last = fmt.Errorf("status of %s: %v", e, err)
				continue
			}
			if s.Leader != 0 && s.Header.MemberId == s.Leader {
				return e, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last == nil {
		last = errors.New("no member reports itself as leader")
	}
	return "", fmt.Errorf("no leader among %v after %v: %v", endpoints, timeout, last)
}

// percentile returns the nearest-rank p-th percentile of sorted, which is
// not empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcd-cluster-bench: "+format+"\n", args...)
	os.Exit(1)
}
