module github.com/ferrygo/ferry

go 1.26.0

require github.com/danielgtaylor/huma/v2 v2.37.2
