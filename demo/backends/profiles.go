package backends

import (
	"context"
	"sync"
	"unicode/utf8"

	"connectrpc.com/connect/v2"
	profilesv1 "github.com/custodian-bff/custodian/gen/go/acme/profiles/v1"
	"github.com/custodian-bff/custodian/gen/go/acme/profiles/v1/profilesv1connect"
	"google.golang.org/protobuf/proto"
)

// Profile limits.
const (
	maxDisplayNameChars = 64
	maxLocaleLen        = 35 // the longest BCP 47 tags in practice
)

// profileService is acme.profiles.v1.ProfileService. The subject always
// comes from the bearer token, so a customer can only see and change their
// own profile.
type profileService struct {
	mu       sync.Mutex
	profiles map[string]*profilesv1.Profile // by subject
}

var _ profilesv1connect.ProfileServiceHandler = (*profileService)(nil)

func newProfileService() *profileService {
	return &profileService{profiles: seedProfiles()}
}

func (s *profileService) register(srv *connect.Server) {
	profilesv1connect.RegisterProfileServiceHandler(srv, s)
}

func (s *profileService) GetProfile(
	ctx context.Context,
	_ *profilesv1.GetProfileRequest,
) (*profilesv1.GetProfileResponse, error) {
	subject, err := requireSubject(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[subject]
	if !ok {
		return nil, errProfileNotFound()
	}
	return &profilesv1.GetProfileResponse{Profile: proto.CloneOf(p)}, nil
}

func (s *profileService) UpdateProfile(
	ctx context.Context,
	req *profilesv1.UpdateProfileRequest,
) (*profilesv1.UpdateProfileResponse, error) {
	subject, err := requireSubject(ctx)
	if err != nil {
		return nil, err
	}
	name := req.GetDisplayName()
	if n := utf8.RuneCountInString(name); n < 1 || n > maxDisplayNameChars {
		return nil, connect.NewError(connect.CodeInvalidArgument, "display_name must be 1 to 64 characters")
	}
	locale := req.GetLocale()
	if !validLocale(locale) {
		return nil, connect.NewError(connect.CodeInvalidArgument, "locale must be a language tag such as en-GB")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[subject]
	if !ok {
		return nil, errProfileNotFound()
	}
	p.DisplayName = name
	if locale != "" {
		p.Locale = locale
	}
	p.MarketingOptIn = req.GetMarketingOptIn()
	return &profilesv1.UpdateProfileResponse{Profile: proto.CloneOf(p)}, nil
}

func errProfileNotFound() error {
	return connect.NewError(connect.CodeNotFound, "no profile for this subject")
}

// validLocale accepts the empty locale (keep the current one) and anything
// shaped like a BCP 47 tag: letters and digits in subtags joined by hyphens.
func validLocale(locale string) bool {
	if locale == "" {
		return true
	}
	if len(locale) > maxLocaleLen {
		return false
	}
	subtagLen := 0
	for i := 0; i < len(locale); i++ {
		c := locale[i]
		switch {
		case c == '-':
			if subtagLen == 0 {
				return false
			}
			subtagLen = 0
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			subtagLen++
			if subtagLen > 8 {
				return false
			}
		default:
			return false
		}
	}
	return subtagLen > 0
}
