module tessera/tests/go-clients

go 1.26.0

require (
	github.com/mongodb-forks/digest v1.1.0
	golang.org/x/oauth2 v0.37.0
)
