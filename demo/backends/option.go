package backends

import (
	"log/slog"
	"net/http"
)

// Option configures [Start].
type Option interface {
	apply(*options)
}

// WithLogger sets the logger for the backends' diagnostics, such as rejected
// tokens. The default discards everything; nil keeps the default.
func WithLogger(logger *slog.Logger) Option {
	return loggerOption{logger: logger}
}

// WithHTTPClient sets the client used to fetch the JWKS. The default is
// [http.DefaultClient]; nil keeps the default.
func WithHTTPClient(client *http.Client) Option {
	return httpClientOption{client: client}
}

type options struct {
	logger     *slog.Logger
	httpClient *http.Client
}

func newOptions(opts []Option) *options {
	o := &options{
		logger:     slog.New(slog.DiscardHandler),
		httpClient: http.DefaultClient,
	}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(o)
		}
	}
	return o
}

type loggerOption struct{ logger *slog.Logger }

func (l loggerOption) apply(o *options) {
	if l.logger != nil {
		o.logger = l.logger
	}
}

type httpClientOption struct{ client *http.Client }

func (h httpClientOption) apply(o *options) {
	if h.client != nil {
		o.httpClient = h.client
	}
}
