package cli

import (
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells a service manager (systemd, through NOTIFY_SOCKET) how the
// process is doing: ready once listening, a status line with the number of
// peers, stopping on shutdown, and a watchdog heartbeat when the unit asks
// for one (WatchdogSec=). Without NOTIFY_SOCKET every call does nothing.
type notifier struct {
	stop chan struct{}
	done chan struct{}
}

// statusEvery is how often the status line is refreshed.
const statusEvery = time.Second

// startNotifier says READY=1 with a first status, then refreshes the
// status and beats the watchdog until stopping.
func startNotifier(status func() string) *notifier {
	n := &notifier{stop: make(chan struct{}), done: make(chan struct{})}
	daemon.SdNotify(false, daemon.SdNotifyReady+"\nSTATUS="+status())
	beat, _ := daemon.SdWatchdogEnabled(false)
	go n.run(status, beat)
	return n
}

func (n *notifier) run(status func() string, beat time.Duration) {
	defer close(n.done)
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	var watchdog <-chan time.Time
	if beat > 0 {
		w := time.NewTicker(beat / 2)
		defer w.Stop()
		watchdog = w.C
	}
	last := ""
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
			if s := status(); s != last {
				daemon.SdNotify(false, "STATUS="+s)
				last = s
			}
		case <-watchdog:
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
}

// stopping says STOPPING=1 and ends the refreshes.
func (n *notifier) stopping(why string) {
	close(n.stop)
	<-n.done
	daemon.SdNotify(false, fmt.Sprintf("%s\nSTATUS=%s", daemon.SdNotifyStopping, why))
}
