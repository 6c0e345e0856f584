module github.com/kithcdp/kith

go 1.26
