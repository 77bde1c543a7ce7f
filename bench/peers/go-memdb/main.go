// Command go-memdb-bench is keel's store benchmark peer: a SwarmKit-like task
// table in hashicorp/go-memdb (Debian's golang-github-hashicorp-go-memdb-dev),
// doing exactly the work keel's bench/store.bench.cpp does, so the two
// figures measure the same thing. The contract both programs follow (data
// set, id generator, cases, output) is written down in docs/benchmarks.md,
// section "store".
//
// The table "tasks" holds *Task values with three indexes:
//
//	id          unique, StringFieldIndex on ID
//	service_id  StringFieldIndex on ServiceID
//	node_id     StringFieldIndex on NodeID
//
// Task i of N (i = 0 .. N-1):
//
//	ID            25 characters: 25 successive outputs x of one splitmix64
//	              generator seeded with 42 (shared by all tasks, in order),
//	              each giving alphabet[x % 36],
//	              alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
//	ServiceID     "svc-<i % 1000>"
//	NodeID        "node-<i % 100>"
//	Slot          i / 1000 + 1
//	DesiredState  0
//	Version       1
//	Name          "<ServiceID>.<Slot>"
//	Payload       64 bytes, all 'x', its own buffer
//
// Cases (run in this order, each once per invocation):
//
//	insert_1_per_txn     insert the N tasks into an empty table, one write
//	                     transaction (Txn(true), Insert, Commit) per task
//	insert_1000_per_txn  the same with 1,000 tasks per transaction
//	mem_per_object       heap in use (runtime.MemStats.HeapAlloc after
//	                     runtime.GC) grown by building the full table
//	                     (creating the N tasks, inserting them 1,000 per
//	                     transaction), divided by N
//	update_1_per_txn     on that full table, one write transaction per
//	                     update: First("id", id) of a random task, a new
//	                     Task copied from it with DesiredState = 1 - old and
//	                     Version + 1, Insert, Commit
//	get_by_id            First("id", id) of random tasks, one read
//	                     transaction (Txn(false)) per 1,000 lookups
//	scan_by_service      Get("service_id", svc) of a random service, one
//	                     read transaction per scan, iterating all its N/1000
//	                     tasks; an op is one task scanned
//
// Random choices come from splitmix64 generators of their own, one per case:
// seed 1 (update_1_per_txn: task i = x % N), 2 (get_by_id: task i = x % N),
// 3 (scan_by_service: service k = x % 1000). The tasks of the insert cases
// are built before the clock starts. The timed cases run in rounds (1,000
// updates; 1,000 lookups in one read transaction; scans until at least 1,000
// tasks were scanned) and stop after the first round that ends at least
// --benchtime seconds after the start.
//
// Build offline:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o go-memdb-bench .
//	./go-memdb-bench --objects=200000 --benchtime=1
//
// Output, one line per case on stdout:
//
//	case=<name> objects=<N> ops=<count> ns=<wall ns> ops_per_s=<ops/s>
//	case=mem_per_object objects=<N> bytes=<heap growth> bytes_per_object=<bytes>
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

const (
	table        = "tasks"
	idAlphabet   = "abcdefghijklmnopqrstuvwxyz0123456789"
	idLen        = 25
	idSeed       = 42
	services     = 1000
	nodes        = 100
	payloadBytes = 64
	perTxn       = 1000 // tasks per transaction in insert_1000_per_txn
	round        = 1000 // ops between clock checks; lookups per read txn
)

// Task is a SwarmKit-like task, stored by pointer and never modified once
// inserted: an update inserts a new Task (go-memdb's objects are immutable).
type Task struct {
	ID           string
	ServiceID    string
	NodeID       string
	Slot         uint64
	DesiredState int
	Version      uint64
	Name         string
	Payload      []byte
}

// splitmix64 is Steele, Lea and Flood's generator (the reference
// splitmix64.c by Vigna): the state advances by the golden gamma, the output
// is the state mixed.
type splitmix64 struct{ state uint64 }

func (s *splitmix64) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// idGen yields the ids of tasks 0, 1, 2, ... in order.
type idGen struct{ rng splitmix64 }

func newIDGen() *idGen { return &idGen{splitmix64{idSeed}} }

func (g *idGen) next() string {
	var b [idLen]byte
	for i := range b {
		b[i] = idAlphabet[g.rng.next()%uint64(len(idAlphabet))]
	}
	return string(b[:])
}

// makeTasks builds tasks 0 .. n-1, each with strings and payload of its own.
func makeTasks(n int) []*Task {
	ids := newIDGen()
	tasks := make([]*Task, n)
	for i := range tasks {
		svc := "svc-" + strconv.Itoa(i%services)
		slot := uint64(i/services + 1)
		p := make([]byte, payloadBytes)
		for j := range p {
			p[j] = 'x'
		}
		tasks[i] = &Task{
			ID:           ids.next(),
			ServiceID:    svc,
			NodeID:       "node-" + strconv.Itoa(i%nodes),
			Slot:         slot,
			DesiredState: 0,
			Version:      1,
			Name:         svc + "." + strconv.FormatUint(slot, 10),
			Payload:      p,
		}
	}
	return tasks
}

// makeIDs returns the ids of tasks 0 .. n-1 (the same as makeTasks').
func makeIDs(n int) []string {
	ids := newIDGen()
	out := make([]string, n)
	for i := range out {
		out[i] = ids.next()
	}
	return out
}

var schema = &memdb.DBSchema{
	Tables: map[string]*memdb.TableSchema{
		table: {
			Name: table,
			Indexes: map[string]*memdb.IndexSchema{
				"id": {
					Name:    "id",
					Unique:  true,
					Indexer: &memdb.StringFieldIndex{Field: "ID"},
				},
				"service_id": {
					Name:    "service_id",
					Indexer: &memdb.StringFieldIndex{Field: "ServiceID"},
				},
				"node_id": {
					Name:    "node_id",
					Indexer: &memdb.StringFieldIndex{Field: "NodeID"},
				},
			},
		},
	},
}

func newDB() *memdb.MemDB {
	db, err := memdb.NewMemDB(schema)
	if err != nil {
		fail("NewMemDB: %v", err)
	}
	return db
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-memdb-bench: "+format+"\n", args...)
	os.Exit(1)
}

// insert puts tasks into db, per tasks per write transaction.
func insert(db *memdb.MemDB, tasks []*Task, per int) {
	for lo := 0; lo < len(tasks); lo += per {
		hi := lo + per
		if hi > len(tasks) {
			hi = len(tasks)
		}
		txn := db.Txn(true)
		for _, t := range tasks[lo:hi] {
			if err := txn.Insert(table, t); err != nil {
				fail("insert %s: %v", t.ID, err)
			}
		}
		txn.Commit()
	}
}

// count checks that db holds exactly n tasks, every one found by its id.
func count(db *memdb.MemDB, n int) {
	txn := db.Txn(false)
	it, err := txn.Get(table, "id")
	if err != nil {
		fail("get id: %v", err)
	}
	got := 0
	for o := it.Next(); o != nil; o = it.Next() {
		got++
	}
	if got != n {
		fail("the table holds %d tasks, want %d (duplicate ids?)", got, n)
	}
}

func report(name string, n int, ops int64, d time.Duration) {
	fmt.Printf("case=%s objects=%d ops=%d ns=%d ops_per_s=%.1f\n",
		name, n, ops, d.Nanoseconds(), float64(ops)/d.Seconds())
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle frees what the first one's finalizers released
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func benchInsert(name string, n, per int) {
	tasks := makeTasks(n)
	db := newDB()
	runtime.GC() // start from a clean heap, as the C++ side starts from a fresh one
	start := time.Now()
	insert(db, tasks, per)
	d := time.Since(start)
	count(db, n)
	report(name, n, int64(n), d)
}

// buildFull builds the full table for the read and update cases, measuring
// the heap it takes (tasks included).
func buildFull(n int) *memdb.MemDB {
	before := heapAlloc()
	db := newDB()
	insert(db, makeTasks(n), perTxn)
	after := heapAlloc()
	grown := int64(after) - int64(before)
	fmt.Printf("case=mem_per_object objects=%d bytes=%d bytes_per_object=%.1f\n",
		n, grown, float64(grown)/float64(n))
	count(db, n)
	return db
}

func benchUpdate(db *memdb.MemDB, ids []string, benchtime time.Duration) {
	rng := splitmix64{1}
	n := uint64(len(ids))
	var ops int64
	start := time.Now()
	for {
		for j := 0; j < round; j++ {
			id := ids[rng.next()%n]
			txn := db.Txn(true)
			o, err := txn.First(table, "id", id)
			if err != nil || o == nil {
				fail("update: no task %s (%v)", id, err)
			}
			old := o.(*Task)
			t := *old // strings and payload are immutable here: shared, as Go does
			t.DesiredState = 1 - old.DesiredState
			t.Version = old.Version + 1
			if err := txn.Insert(table, &t); err != nil {
				fail("update %s: %v", id, err)
			}
			txn.Commit()
		}
		ops += round
		if time.Since(start) >= benchtime {
			break
		}
	}
	report("update_1_per_txn", len(ids), ops, time.Since(start))
}

func benchGet(db *memdb.MemDB, ids []string, benchtime time.Duration) {
	rng := splitmix64{2}
	n := uint64(len(ids))
	var ops int64
	var sum uint64
	start := time.Now()
	for {
		txn := db.Txn(false)
		for j := 0; j < round; j++ {
			id := ids[rng.next()%n]
			o, err := txn.First(table, "id", id)
			if err != nil || o == nil {
				fail("get_by_id: no task %s (%v)", id, err)
			}
			sum += o.(*Task).Slot
		}
		txn.Abort()
		ops += round
		if time.Since(start) >= benchtime {
			break
		}
	}
	d := time.Since(start)
	if sum == 0 {
		fail("get_by_id: slots sum to 0")
	}
	report("get_by_id", len(ids), ops, d)
}

func benchScan(db *memdb.MemDB, n int, benchtime time.Duration) {
	rng := splitmix64{3}
	per := n / services
	svcs := make([]string, services)
	for k := range svcs {
		svcs[k] = "svc-" + strconv.Itoa(k)
	}
	var ops int64
	var sum uint64
	start := time.Now()
	for {
		// A round scans at least 1,000 tasks: ceil(1000 / per) services.
		for scanned := 0; scanned < round; {
			svc := svcs[rng.next()%services]
			txn := db.Txn(false)
			it, err := txn.Get(table, "service_id", svc)
			if err != nil {
				fail("scan %s: %v", svc, err)
			}
			got := 0
			for o := it.Next(); o != nil; o = it.Next() {
				sum += o.(*Task).Slot
				got++
			}
			txn.Abort()
			if got != per {
				fail("scan %s: %d tasks, want %d", svc, got, per)
			}
			scanned += got
			ops += int64(got)
		}
		if time.Since(start) >= benchtime {
			break
		}
	}
	d := time.Since(start)
	if sum == 0 {
		fail("scan_by_service: slots sum to 0")
	}
	report("scan_by_service", n, ops, d)
}

func main() {
	objects := flag.Int("objects", 200000, "tasks in the table (a multiple of 1000)")
	seconds := flag.Float64("benchtime", 1, "seconds each timed case runs (update, get, scan)")
	printIDs := flag.Int("print-ids", 0, "print the first `n` task ids and exit")
	flag.Parse()
	n := *objects
	if *printIDs > 0 {
		for _, id := range makeIDs(*printIDs) {
			fmt.Println(id)
		}
		return
	}
	if n <= 0 || n%services != 0 {
		fail("--objects must be a positive multiple of %d, got %d", services, n)
	}
	if *seconds <= 0 {
		fail("--benchtime must be positive, got %v", *seconds)
	}
	benchtime := time.Duration(*seconds * float64(time.Second))

	benchInsert("insert_1_per_txn", n, 1)
	benchInsert("insert_1000_per_txn", n, perTxn)
	runtime.GC()
	db := buildFull(n)
	ids := makeIDs(n)
	benchUpdate(db, ids, benchtime)
	benchGet(db, ids, benchtime)
	benchScan(db, n, benchtime)
}
