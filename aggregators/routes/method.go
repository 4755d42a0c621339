package routes

import (
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MethodPlan is a validated route from a public method to a backend method.
type MethodPlan struct {
	Public, Backend protoreflect.MethodDescriptor
	// Request builds backend requests from public ones: use
	// [Copier.ToBackend].
	Request *Copier
	// Response builds public answers (or stream messages) from backend
	// ones: use [Copier.ToPublic].
	Response *Copier
}

// ShapeError reports a route whose streaming shape cannot be served.
type ShapeError struct {
	Public, Backend protoreflect.FullName
	// Reason says what does not match.
	Reason string
}

func (e *ShapeError) Error() string {
	return string(e.Public) + ": " + e.Reason
}

// CheckMethod validates a route from a public method to a backend method and
// compiles the copiers of its request and response types. Only unary and
// server-streaming methods are supported, and both methods must have the
// same shape. It returns a [*ShapeError] or a [*MismatchError].
func CheckMethod(public, backend protoreflect.MethodDescriptor, opts ...Option) (*MethodPlan, error) {
	if public.IsStreamingClient() {
		return nil, &ShapeError{Public: public.FullName(), Backend: backend.FullName(),
			Reason: "is " + streamingShape(public) + "; only unary and server-streaming routes are supported"}
	}
	if ps, bs := streamingShape(public), streamingShape(backend); ps != bs {
		return nil, &ShapeError{Public: public.FullName(), Backend: backend.FullName(),
			Reason: "is " + ps + " but backend method " + string(backend.FullName()) + " is " + bs}
	}
	req, err := NewCopier(public.Input(), backend.Input(), opts...)
	if err != nil {
		return nil, err
	}
	res, err := NewCopier(public.Output(), backend.Output(), opts...)
	if err != nil {
		return nil, err
	}
	return &MethodPlan{Public: public, Backend: backend, Request: req, Response: res}, nil
}

func streamingShape(m protoreflect.MethodDescriptor) string {
	switch {
	case m.IsStreamingClient() && m.IsStreamingServer():
		return "bidirectional-streaming"
	case m.IsStreamingClient():
		return "client-streaming"
	case m.IsStreamingServer():
		return "server-streaming"
	}
	return "unary"
}
