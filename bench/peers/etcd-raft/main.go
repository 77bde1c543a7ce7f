// Command etcd-raft-bench is keel's Raft benchmark peer: etcd-io/raft (the
// go.etcd.io/etcd/raft package of Debian's golang-etcd-server-dev) driven
// exactly as bench/raft.bench.cpp drives keel's raw_node, so the two figures
// measure the same work:
//
//	one_node_propose         one voter; an op proposes 256 entries of 64 bytes
//	                         and runs the Ready loop until all are applied.
//	one_node_propose_sync    one voter; an op proposes one entry and runs the
//	                         Ready loop until it is applied.
//	three_node_propose       three voters in one goroutine, messages handed
//	                         over in memory (FIFO); an op proposes 256 entries
//	                         on the leader and runs every node's Ready loop and
//	                         delivers messages until nothing moves.
//	three_node_propose_sync  the same with one entry per op.
//	one_node_node            etcd's own BenchmarkOneNode (node_bench_test.go)
//	                         through the public Node API, with 64-byte entries
//	                         instead of "foo"; for reference only.
//
// Every case builds its RawNode over a MemoryStorage bootstrapped with a
// snapshot at index 1 carrying the voters (as keel's bench does), uses the
// same limits as keel's defaults (1 MiB per message, 64 MiB committed per
// Ready, 256 inflight, check-quorum, pre-vote), discards log lines, copies
// each proposal's payload into a fresh buffer (keel's bench builds a
// std::string per proposal), and compacts the storage every 65536 applied
// entries.
//
// Build offline: GO111MODULE=off GOPATH=/usr/share/gocode go build -o etcd-raft-bench .
//
// Output, one line per case on stdout:
//
//	case=<name> ops=<entries committed> ns=<wall ns> ops_per_s=<entries/s> ns_per_op=<ns per entry>
package main

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/raft"
	pb "go.etcd.io/etcd/raft/raftpb"
)

const (
	entryBytes   = 64
	batch        = 256
	compactEvery = 1 << 16
)

var payload = func() []byte {
	p := make([]byte, entryBytes)
	for i := range p {
		p[i] = 'x'
	}
	return p
}()

// proposal returns a fresh copy of the payload, as a caller owning its data would.
func proposal() []byte {
	d := make([]byte, entryBytes)
	copy(d, payload)
	return d
}

func nodeConfig(id uint64, s *raft.MemoryStorage) *raft.Config {
	return &raft.Config{
		ID:                       id,
		ElectionTick:             10,
		HeartbeatTick:            1,
		Storage:                  s,
		MaxSizePerMsg:            1 << 20,
		MaxCommittedSizePerReady: 64 << 20,
		MaxInflightMsgs:          256,
		CheckQuorum:              true,
		PreVote:                  true,
		Logger:                   &raft.DefaultLogger{Logger: log.New(ioutil.Discard, "", 0)},
	}
}

// member is one node and what its node layer keeps.
type member struct {
	storage        *raft.MemoryStorage
	node           *raft.RawNode
	appliedIndex   uint64
	appliedEntries uint64
	appliedBytes   uint64
}

// newMember boots a member of voters: a snapshot at index 1 with the configuration.
func newMember(id uint64, voters []uint64) *member {
	s := raft.NewMemoryStorage()
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: voters}}}
	if err := s.ApplySnapshot(snap); err != nil {
		panic(err)
	}
	rn, err := raft.NewRawNode(nodeConfig(id, s))
	if err != nil {
		panic(err)
	}
	return &member{storage: s, node: rn, appliedIndex: 1}
}

// drain is the node layer: it takes Readies until there are none.
func (m *member) drain(send func(pb.Message)) {
	for m.node.HasReady() {
		rd := m.node.Ready()
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := m.storage.ApplySnapshot(rd.Snapshot); err != nil {
				panic(err)
			}
			m.appliedIndex = rd.Snapshot.Metadata.Index
		}
		if len(rd.Entries) > 0 {
			if err := m.storage.Append(rd.Entries); err != nil {
				panic(err)
			}
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			m.storage.SetHardState(rd.HardState)
		}
		for _, msg := range rd.Messages {
			send(msg)
		}
		for i := range rd.CommittedEntries {
			e := &rd.CommittedEntries[i]
			if len(e.Data) > 0 {
				m.appliedEntries++
				m.appliedBytes += uint64(len(e.Data))
			}
			m.appliedIndex = e.Index
		}
		m.node.Advance(rd)
	}
	first, _ := m.storage.FirstIndex()
	if m.appliedIndex >= first+compactEvery {
		if err := m.storage.Compact(m.appliedIndex); err != nil {
			panic(err)
		}
	}
}

func noMessages(pb.Message) {}

func oneNode(perOp int) func(b *testing.B) {
	return func(b *testing.B) {
		m := newMember(1, []uint64{1})
		if err := m.node.Campaign(); err != nil {
			b.Fatal(err)
		}
		m.drain(noMessages)
		if m.node.BasicStatus().RaftState != raft.StateLeader {
			b.Fatal("the node did not become leader")
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for k := 0; k < perOp; k++ {
				if err := m.node.Propose(proposal()); err != nil {
					b.Fatal(err)
				}
			}
			m.drain(noMessages)
		}
		b.StopTimer()
		if m.appliedEntries != uint64(b.N*perOp) {
			b.Fatalf("applied %d entries, proposed %d", m.appliedEntries, b.N*perOp)
		}
	}
}

// cluster is three voters whose messages are handed over in memory, FIFO.
type cluster struct {
	members    [3]*member
	queue      []pb.Message
	delivering []pb.Message
}

func newCluster() *cluster {
	voters := []uint64{1, 2, 3}
	c := &cluster{}
	for _, id := range voters {
		c.members[id-1] = newMember(id, voters)
	}
	if err := c.members[0].node.Campaign(); err != nil {
		panic(err)
	}
	c.settle()
	if c.members[0].node.BasicStatus().RaftState != raft.StateLeader {
		panic("node 1 did not become leader")
	}
	return c
}

// settle runs every node's Ready loop and delivers messages until nothing moves.
func (c *cluster) settle() {
	send := func(m pb.Message) { c.queue = append(c.queue, m) }
	for {
		for _, m := range c.members {
			m.drain(send)
		}
		if len(c.queue) == 0 {
			return
		}
		c.delivering, c.queue = c.queue, c.delivering[:0]
		for _, msg := range c.delivering {
			_ = c.members[msg.To-1].node.Step(msg)
		}
		for i := range c.delivering {
			c.delivering[i] = pb.Message{} // Drop references, as keel's clear() does.
		}
		c.delivering = c.delivering[:0]
	}
}

func threeNode(perOp int) func(b *testing.B) {
	return func(b *testing.B) {
		c := newCluster()
		leader := c.members[0]
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for k := 0; k < perOp; k++ {
				if err := leader.node.Propose(proposal()); err != nil {
					b.Fatal(err)
				}
			}
			c.settle()
		}
		b.StopTimer()
		if leader.appliedEntries != uint64(b.N*perOp) {
			b.Fatalf("applied %d entries, proposed %d", leader.appliedEntries, b.N*perOp)
		}
	}
}

// oneNodeNode is etcd's BenchmarkOneNode (node_bench_test.go) through the
// public API: a proposer goroutine, the node's own goroutine, and this Ready
// loop sleeping 1 ms per Ready as "a reasonable disk sync latency". The only
// change is 64-byte payloads instead of "foo".
func oneNodeNode(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := raft.NewMemoryStorage()
	c := &raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		MaxSizePerMsg: ^uint64(0), MaxInflightMsgs: 256,
		Logger: &raft.DefaultLogger{Logger: log.New(ioutil.Discard, "", 0)},
	}
	n := raft.StartNode(c, []raft.Peer{{ID: 1}})
	defer n.Stop()
	// StartNode commits the bootstrap conf change at index 1; a node with a
	// committed, unapplied conf change refuses to campaign, so apply it first
	// (etcd's test builds the node from a peer list instead).
	applyConfChanges := func(ents []pb.Entry) {
		for _, e := range ents {
			if e.Type == pb.EntryConfChange {
				var cc pb.ConfChange
				if err := cc.Unmarshal(e.Data); err != nil {
					b.Fatal(err)
				}
				n.ApplyConfChange(cc)
			}
		}
	}
	rd := <-n.Ready()
	s.Append(rd.Entries)
	applyConfChanges(rd.CommittedEntries)
	n.Advance()
	n.Campaign(ctx)
	// StartNode appends the bootstrap conf change at index 1; the leader's
	// empty entry follows, then the b.N proposals.
	target := uint64(b.N + 2)
	go func() {
		for i := 0; i < b.N; i++ {
			n.Propose(ctx, proposal())
		}
	}()
	for {
		rd := <-n.Ready()
		s.Append(rd.Entries)
		applyConfChanges(rd.CommittedEntries)
		time.Sleep(1 * time.Millisecond)
		n.Advance()
		if rd.HardState.Commit >= target {
			return
		}
	}
}

type benchCase struct {
	name     string
	perOp    int // entries committed per op
	run      func(b *testing.B)
	optional bool // run only when asked by name
}

var cases = []benchCase{
	{"one_node_propose", batch, oneNode(batch), false},
	{"one_node_propose_sync", 1, oneNode(1), false},
	{"three_node_propose", batch, threeNode(batch), false},
	{"three_node_propose_sync", 1, threeNode(1), false},
	{"one_node_node", 1, oneNodeNode, true},
}

func main() {
	testing.Init()
	only := flag.String("case", "all", "comma-separated cases to run, or all")
	benchtime := flag.Duration("benchtime", time.Second, "minimum time per case")
	flag.Parse()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		log.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		want[n] = true
	}
	ran := 0
	for _, c := range cases {
		if !want[c.name] && !(want["all"] && !c.optional) {
			continue
		}
		r := testing.Benchmark(c.run)
		if r.N == 0 {
			fmt.Fprintf(os.Stderr, "etcd-raft-bench: %s failed\n", c.name)
			os.Exit(1)
		}
		ops := float64(r.N) * float64(c.perOp)
		ns := float64(r.T.Nanoseconds())
		fmt.Printf("case=%s ops=%.0f ns=%.0f ops_per_s=%.1f ns_per_op=%.2f\n",
			c.name, ops, ns, ops/(ns/1e9), ns/ops)
		ran++
	}
	if ran == 0 {
		fmt.Fprintf(os.Stderr, "etcd-raft-bench: no case matches %q\n", *only)
		os.Exit(2)
	}
}
