// Cloudinary's Java SDK signing each case read from stdin; see tests/functional/test_client_signatures.py.
// A line: "<version> <algorithm> <name hex>:<value hex>,..." (UTF-8 as hex); out: one hex signature a line.
import com.cloudinary.SignatureAlgorithm;
import com.cloudinary.Util;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;

public class Sign {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String secret = System.getenv("VS_API_SECRET");
        for (String line; (line = in.readLine()) != null && !line.isEmpty(); ) {
            String[] fields = line.split(" ");
            Map<String, Object> params = new HashMap<>();
            for (String pair : fields[2].split(",")) {
                String[] kv = pair.split(":", -1);
                params.put(text(kv[0]), text(kv[1]));
            }
            SignatureAlgorithm algorithm = SignatureAlgorithm.valueOf(fields[1].toUpperCase());
            System.out.println(Util.produceSignature(params, secret, algorithm, Integer.parseInt(fields[0])));
        }
    }

    private static String text(String hex) {
        return new String(HexFormat.of().parseHex(hex), StandardCharsets.UTF_8);
    }
}
