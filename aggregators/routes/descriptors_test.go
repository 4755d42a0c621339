package routes

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	webv1 "github.com/custodian-bff/custodian/aggregators/routes/testdata/gen/routestest/web/v1"
)

// buf runs the repository's pinned buf (go tool buf) in testdata, where the
// test schemas' buf.yaml is.
func buf(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool", "buf"}, args...)...)
	cmd.Dir = "testdata"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool buf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestLoadFilesFromBuf loads the test schemas as a user builds them, with
// and without their imports, and routes GetTicket through them: the path a
// config-only route takes at start and on every call.
func TestLoadFilesFromBuf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, build := range []struct{ name, flag string }{{"with imports", ""}, {"without imports", "--exclude-imports"}} {
		t.Run(build.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(build.name, " ", "-")+".binpb")
			args := []string{"build", "-o", out}
			if build.flag != "" {
				args = append(args, build.flag)
			}
			buf(t, args...)
			files, err := LoadFiles(out)
			if err != nil {
				t.Fatalf("LoadFiles: %v", err)
			}
			public, err := FindMethod(files, "routestest.web.v1.TicketService/GetTicket")
			if err != nil {
				t.Fatal(err)
			}
			backend, err := FindMethod(files, "/routestest.backend.v1.TicketService/GetTicket")
			if err != nil {
				t.Fatal(err)
			}
			// The generated types are those of the same .proto files.
			for _, md := range []protoreflect.MessageDescriptor{public.Output(), backend.Output()} {
				generated := webResponse
				if md.FullName() == backendResponse.FullName() {
					generated = backendResponse
				}
				loaded, gen := protodesc.ToFileDescriptorProto(md.ParentFile()), protodesc.ToFileDescriptorProto(generated.ParentFile())
				loaded.SourceCodeInfo = nil // generated code leaves out comments
				if !proto.Equal(loaded, gen) {
					t.Errorf("%s differs from its generated type: run 'go tool buf generate' in testdata", md.ParentFile().Path())
				}
			}
			plan, err := CheckMethod(public, backend)
			if err != nil {
				t.Fatalf("CheckMethod: %v", err)
			}
			src := decodeDynamic(t, backend.Output(), canaryBytes(t, nil))
			dst := dynamicpb.NewMessage(public.Output())
			plan.Response.ToPublic(dst, src)
			b, err := proto.Marshal(dst)
			if err != nil {
				t.Fatal(err)
			}
			if got := convert(t, dst, &webv1.GetTicketResponse{}); !proto.Equal(got, webTicket()) || bytes.Contains(b, []byte(marker)) {
				t.Errorf("public answer = %v", got)
			}
			if _, err := CheckMethod(mustFindMethod(t, files, "routestest.web.v1.TicketService/ImportTickets"),
				mustFindMethod(t, files, "routestest.backend.v1.TicketService/ImportTickets")); err == nil {
				t.Error("CheckMethod accepts a client-streaming route")
			}
		})
	}
}

func mustFindMethod(t *testing.T, files interface {
	FindDescriptorByName(protoreflect.FullName) (protoreflect.Descriptor, error)
}, name string) protoreflect.MethodDescriptor {
	t.Helper()
	service, method, _ := strings.Cut(name, "/")
	d, err := files.FindDescriptorByName(protoreflect.FullName(service + "." + method))
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.MethodDescriptor)
}

// TestGeneratedUpToDate checks that testdata/gen is what buf generates from
// testdata/proto today.
func TestGeneratedUpToDate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	buf(t, "generate", "-o", dir)
	fresh := readTree(t, filepath.Join(dir, "gen"))
	committed := readTree(t, filepath.Join("testdata", "gen"))
	if len(fresh) == 0 {
		t.Fatal("buf generate wrote nothing")
	}
	for name, b := range fresh {
		if !bytes.Equal(b, committed[name]) {
			t.Errorf("testdata/gen/%s is stale: run 'go tool buf generate' in aggregators/routes/testdata", name)
		}
	}
	for name := range committed {
		if _, ok := fresh[name]; !ok {
			t.Errorf("testdata/gen/%s is not generated any more: delete it", name)
		}
	}
}

func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(root, path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func writeSet(t *testing.T, set *descriptorpb.FileDescriptorSet) string {
	t.Helper()
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "set.binpb")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFiles(t *testing.T) {
	t.Parallel()
	tickets := file("web.proto", "web.v1", imports{"google/protobuf/timestamp.proto"},
		message("Req", field("id", 1, "string")),
		message("Res", field("created", 1, "google.protobuf.Timestamp")),
		service("Tickets", rpcSpec{name: "Get", input: "Req", output: "Res"}),
	)
	path := writeSet(t, &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{tickets}})
	files, err := LoadFiles(path)
	if err != nil {
		t.Fatalf("LoadFiles: %v", err)
	}
	m, err := FindMethod(files, "web.v1.Tickets/Get")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Output().Fields().ByName("created").Message().FullName(); got != "google.protobuf.Timestamp" {
		t.Errorf("created is a %s", got)
	}
}

func TestLoadFilesErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	missingImport := writeSet(t, &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		file("web.proto", "web.v1", imports{"acme/users.proto"}, message("Req", field("user", 1, "acme.User"))),
	}})
	tests := []struct {
		name string
		path string
		want string // the start of the error; the rest names the file or the cause
		// contains is more of the error, from protobuf, whose errors read
		// "proto: " or, at random, "proto:\u00a0" so that no test relies on them.
		contains string
	}{
		{"no file", filepath.Join(dir, "absent.binpb"), "descriptor set: open " + filepath.Join(dir, "absent.binpb") + ": no such file or directory", ""},
		{"not protobuf", write("text.binpb", []byte("version: v2\nmodules:\n")), "descriptor set " + filepath.Join(dir, "text.binpb") + " is not a binary FileDescriptorSet (buf build -o FILE.binpb): ", ""},
		{"empty", write("empty.binpb", nil), "descriptor set " + filepath.Join(dir, "empty.binpb") + " holds no files", ""},
		{"missing import", missingImport, "descriptor set " + missingImport + ": ", `could not resolve import "acme/users.proto": not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files, err := LoadFiles(tt.path)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("LoadFiles = %v, %v; want an error starting %q and containing %q", files, err, tt.want, tt.contains)
			}
		})
	}
}

func TestFindMethod(t *testing.T) {
	t.Parallel()
	files := buildFiles(t, file("web.proto", "web.v1",
		message("Req"), enum("Status", "STATUS_UNSPECIFIED", 0),
		service("Tickets", rpcSpec{name: "Get", input: "Req", output: "Req"}),
	))
	tests := []struct {
		name string
		want string // the method's full name, or the error
	}{
		{"web.v1.Tickets/Get", "web.v1.Tickets.Get"},
		{"/web.v1.Tickets/Get", "web.v1.Tickets.Get"},
		{"web.v1.Tickets.Get", `method "web.v1.Tickets.Get" is not of the form package.Service/Method`},
		{"web.v1.Tickets/", `method "web.v1.Tickets/" is not of the form package.Service/Method`},
		{"web.v1.Tickets/Get/More", `method "web.v1.Tickets/Get/More" is not of the form package.Service/Method`},
		{"web.v1.Other/Get", "service web.v1.Other not found in the descriptor set"},
		{"web.v1.Req/Get", "web.v1.Req is a message, not a service"},
		{"web.v1.Status/Get", "web.v1.Status is an enum, not a service"},
		{"web.v1.Tickets/List", "method List not found in service web.v1.Tickets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := FindMethod(files, tt.name)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = string(m.FullName())
			}
			if got != tt.want {
				t.Errorf("FindMethod(%q) = %s, want %s", tt.name, got, tt.want)
			}
		})
	}
}
