using System.Text;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Protocol;

public class NodeElementScannerTests
{
    private static NodeElement Scan(string json, int maxDepth = 64) => NodeElementScanner.Scan(Encoding.UTF8.GetBytes(json), maxDepth, new Utf8NameCache());

    private static string Array(string json, NodeElement e) => Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(json), e.ArrayStart, e.ArrayLength);

    [Fact]
    public void Finds_the_name_and_the_array_of_the_legacy_form()
    {
        const string json = " [\"ping\", 1, {\"a\": [2, 3]}, \"x\"] ";
        var e = Scan(json);
        Assert.Equal("ping", e.Name);
        Assert.Null(e.MessageId);
        Assert.Equal("[\"ping\", 1, {\"a\": [2, 3]}, \"x\"]", Array(json, e));
    }

    [Fact]
    public void Finds_the_args_and_a_truthy_id_of_the_object_form_whatever_the_key_order()
    {
        const string json = "{\"id\":\"abc\",\"extra\":{\"args\":[\"no\"]},\"args\":[\"pi\\u006eg\",[1]]}";
        var e = Scan(json);
        Assert.Equal("ping", e.Name);
        Assert.Equal("abc", e.MessageId);
        Assert.Equal("[\"pi\\u006eg\",[1]]", Array(json, e));
    }

    [Theory]
    [InlineData("\"\"", null)]
    [InlineData("0", null)]
    [InlineData("0.0", null)]
    [InlineData("false", null)]
    [InlineData("null", null)]
    [InlineData("{\"a\":1}", null)]
    [InlineData("7", "7")]
    [InlineData("true", "true")]
    [InlineData("\"u-1\"", "u-1")]
    public void An_id_counts_only_when_JavaScript_would_call_it_truthy(string id, string? expected)
        => Assert.Equal(expected, Scan("{\"args\":[\"e\"],\"id\":" + id + "}").MessageId);

    [Theory]
    [InlineData("[]")]
    [InlineData("[1,\"a\"]")]
    [InlineData("{\"args\":[]}")]
    public void An_array_without_a_leading_name_has_no_name(string json) => Assert.Null(Scan(json).Name);

    [Theory]
    [InlineData("{\"id\":\"1\"}")]
    [InlineData("{\"args\":\"ping\"}")]
    [InlineData("\"ping\"")]
    [InlineData("12")]
    public void Shapes_that_are_not_messages_are_protocol_errors(string json)
        => Assert.Throws<ProtocolException>(() => Scan(json));

    [Theory]
    [InlineData("[\"a\",]")]
    [InlineData("[\"a\"] x")]
    [InlineData("{\"args\":[\"a\"],}")]
    [InlineData("['a']")]
    [InlineData("[\"a\",NaN]")]
    public void Malformed_json_is_a_decode_error(string json) => Assert.Throws<DecodeException>(() => Scan(json));

    [Fact]
    public void Nesting_beyond_the_limit_and_invalid_utf8_are_decode_errors()
    {
        Assert.Throws<DecodeException>(() => Scan("[\"a\"," + new string('[', 20) + new string(']', 20) + "]", maxDepth: 10));
        Assert.Throws<DecodeException>(() => NodeElementScanner.Scan([(byte)'[', (byte)'"', 0xFF, (byte)'"', (byte)']'], 64, new Utf8NameCache()));
    }

    [Fact]
    public void Names_are_reused_from_the_cache()
    {
        var cache = new Utf8NameCache();
        var first = NodeElementScanner.Scan("[\"tick\",1]"u8.ToArray(), 64, cache).Name;
        var second = NodeElementScanner.Scan("{\"args\":[\"tick\",2]}"u8.ToArray(), 64, cache).Name;
        Assert.Same(first, second);
    }
}
