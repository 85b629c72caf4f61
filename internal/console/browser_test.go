package console_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsefs "github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/efsd/efsd/internal/daemon"
	"github.com/efsd/efsd/internal/efstest"
)

// chromium finds a Chromium (Debian's package is "chromium").
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// The console in a real browser: the page loads without errors in the
// browser's console, shows a file system created through the API with
// its mount target and access point, and a replication whose lag and plot
// update as the page refreshes itself.
func TestConsoleInABrowser(t *testing.T) {
	exe := chromium()
	if exe == "" {
		t.Skip("SKIP: no Chromium on this machine (Debian package chromium); the console's browser test needs it")
	}
	s := efstest.Start(t, efstest.WithConfig(func(c *daemon.Config) {
		c.AdminListen = "127.0.0.1:0"
		c.Regions = []string{"us-east-1", "eu-west-1"}
		c.ReplicationRescanInterval = 200 * time.Millisecond
		c.ConsoleSampleEvery = 200 * time.Millisecond
		c.ConsoleRefresh = 500 * time.Millisecond
	}))
	ctx := context.Background()
	api := s.Client(efstest.AccountA, "us-east-1")
	fs, err := api.CreateFileSystem(ctx, &awsefs.CreateFileSystemInput{CreationToken: aws.String("console"),
		Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("shown-in-the-console")}}})
	if err != nil {
		t.Fatal(err)
	}
	fsID := aws.ToString(fs.FileSystemId)
	efstest.Eventually(t, 10*time.Second, "file system available", func() bool {
		out, err := api.DescribeFileSystems(ctx, &awsefs.DescribeFileSystemsInput{FileSystemId: fs.FileSystemId})
		return err == nil && out.FileSystems[0].LifeCycleState == types.LifeCycleStateAvailable
	})
	ap, err := api.CreateAccessPoint(ctx, &awsefs.CreateAccessPointInput{FileSystemId: fs.FileSystemId,
		PosixUser: &types.PosixUser{Uid: aws.Int64(1001), Gid: aws.Int64(1001)}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := api.CreateReplicationConfiguration(ctx, &awsefs.CreateReplicationConfigurationInput{
		SourceFileSystemId: fs.FileSystemId, Destinations: []types.DestinationToCreate{{Region: aws.String("eu-west-1")}}})
	if err != nil {
		t.Fatal(err)
	}
	destID := aws.ToString(rep.Destinations[0].FileSystemId)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	var mu sync.Mutex
	var problems []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s at %s:%d", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber))
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("%s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		}
	}
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(listen))
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	fsRow := chromedp.CSS(`tr[data-file-system="` + fsID + `"]`)
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+s.AdminAddr()+"/"), chromedp.WaitVisible(fsRow)); err != nil {
		t.Fatal(err)
	}
	row, err := chromedp.Run(bctx, chromedp.Text(fsRow))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"shown-in-the-console", "available", aws.ToString(ap.AccessPointId), "1001:1001"} {
		if !strings.Contains(row, want) {
			t.Errorf("the file system's row lacks %q: %q", want, row)
		}
	}

	// The replication shows as ENABLED with a lag, and the page refreshes
	// itself: the time, the lag and the plot move without a reload.
	type snap struct {
		AsOf   string `json:"asOf"`
		Row    string `json:"row"`
		Status string `json:"status"`
		Lag    string `json:"lag"`
		Points string `json:"points"`
		Loads  int    `json:"loads"`
	}
	const snapJS = `(() => {
		const q = s => document.querySelector(s), text = s => q(s) ? q(s).textContent : "";
		const line = q("#replications tbody tr polyline");
		return {asOf: text("#as-of"), row: text("#replications tbody tr"), status: text("#replications tbody td.status"),
			lag: text("#replications tbody td.lag"), points: line ? line.getAttribute("points") : "",
			loads: performance.getEntriesByType("navigation").length};
	})()`
	read := func() snap {
		t.Helper()
		sn, err := chromedp.Run(bctx, chromedp.Evaluate[snap](snapJS))
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	var first snap
	efstest.Eventually(t, 30*time.Second, "the replication ENABLED with a lag and a plot", func() bool {
		first = read()
		return first.Status == "ENABLED" && strings.HasSuffix(first.Lag, " s") && first.Points != ""
	})
	if !strings.Contains(first.Row, destID) || !strings.Contains(first.Row, fsID) || !strings.Contains(first.Row, "eu-west-1") {
		t.Errorf("the replication's row %q does not name %s and %s in eu-west-1", first.Row, fsID, destID)
	}
	efstest.Eventually(t, 30*time.Second, "the page refreshed: as-of time, lag and plot changed", func() bool {
		now := read()
		return now.AsOf != first.AsOf && now.Lag != first.Lag && len(strings.Fields(now.Points)) > len(strings.Fields(first.Points)) &&
			now.Loads == first.Loads
	})
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the browser reported:\n%s", strings.Join(problems, "\n"))
	}
}
