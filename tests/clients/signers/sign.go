// Cloudinary's Go SDK signing each case read from stdin; see tests/functional/test_client_signatures.py.
// A line: "<version> <algorithm> <name hex>:<value hex>,..." (UTF-8 as hex); out: one hex signature a line.
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/cloudinary/cloudinary-go/v2/api"
)

func text(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		fields := strings.Split(scanner.Text(), " ")
		version, _ := strconv.Atoi(fields[0])
		params := url.Values{}
		for _, pair := range strings.Split(fields[2], ",") {
			kv := strings.SplitN(pair, ":", 2)
			params.Set(text(kv[0]), text(kv[1]))
		}
		signature, err := api.SignParametersUsingAlgoAndVersion(params, os.Getenv("VS_API_SECRET"), fields[1], version)
		if err != nil {
			panic(err)
		}
		fmt.Println(signature)
	}
}
