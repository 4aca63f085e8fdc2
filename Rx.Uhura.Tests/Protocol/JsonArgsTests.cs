using System.Text;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Protocol;

public class JsonArgsTests
{
    private static void Validate(string json, int depth = 64) => JsonArgs.ValidateArray(Encoding.UTF8.GetBytes(json), depth, "arguments");

    [Theory]
    [InlineData("[]")]
    [InlineData(" [1,\"a\",{\"b\":[null,true]},2.5e3] ")]
    public void Accepts_a_well_formed_array(string json) => Validate(json);

    [Theory]
    [InlineData("")]
    [InlineData("[1,")]
    [InlineData("[1]x")]
    [InlineData("[1] [2]")]
    [InlineData("[01]")]
    [InlineData("['a']")]
    [InlineData("[1,]")]
    [InlineData("[NaN]")]
    public void Rejects_malformed_json_with_a_DecodeException(string json)
        => Assert.Throws<DecodeException>(() => Validate(json));

    [Fact]
    public void Rejects_invalid_utf8() => Assert.Throws<DecodeException>(() => JsonArgs.ValidateArray([(byte)'[', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)']'], 64, "arguments"));

    [Fact]
    public void Rejects_nesting_deeper_than_the_limit()
    {
        Validate(new string('[', 10) + new string(']', 10), depth: 10);
        Assert.Throws<DecodeException>(() => Validate(new string('[', 11) + new string(']', 11), depth: 10));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("1")]
    [InlineData("\"a\"")]
    public void Rejects_json_that_is_not_an_array_with_a_ProtocolException(string json)
        => Assert.Throws<ProtocolException>(() => Validate(json));

    [Fact]
    public void Parses_what_it_validated()
    {
        var args = JsonArgs.Parse(Encoding.UTF8.GetBytes("[1,\"two\",{\"three\":3},1.0]"), 64);
        Assert.Equal(4, args.Length);
        Assert.Equal(1, (int)args[0]);
        Assert.Equal("two", (string?)args[1]);
        Assert.Equal(3, (int)args[2]["three"]!);
        Assert.Equal(Newtonsoft.Json.Linq.JTokenType.Float, args[3].Type);
    }

    [Theory]
    [InlineData("[]", true)]
    [InlineData("[ ]", true)]
    [InlineData("[0]", true)]
    [InlineData("[-12, \"a b\", true,false ,null]", true)]
    [InlineData("[01]", false)]
    [InlineData("[1.5]", false)]
    [InlineData("[1e3]", false)]
    [InlineData("[-]", false)]
    [InlineData("[\"a\\\"b\"]", false)]
    [InlineData("[\"é\"]", false)]
    [InlineData("[1,]", false)]
    [InlineData("[,1]", false)]
    [InlineData("[1 2]", false)]
    [InlineData("[truex]", false)]
    [InlineData("[1]]", false)]
    [InlineData("[[1]]", false)]
    [InlineData("[\"a]", false)]
    [InlineData("[1", false)]
    public void The_fast_path_accepts_only_flat_simple_arrays(string json, bool expected)
        => Assert.Equal(expected, JsonArgs.IsFlatSimpleArray(Encoding.UTF8.GetBytes(json)));

    [Fact]
    public void Whatever_the_fast_path_accepts_is_valid_json()
    {
        var random = new Random(42);
        var alphabet = "[]0123456789-,. \"tfrueanlsx\\e"u8.ToArray();
        var accepted = 0;
        for (var i = 0; i < 200_000; i++)
        {
            var bytes = new byte[random.Next(1, 16)];
            bytes[0] = (byte)'[';
            for (var j = 1; j < bytes.Length; j++)
            {
                bytes[j] = alphabet[random.Next(alphabet.Length)];
            }

            if (JsonArgs.IsFlatSimpleArray(bytes))
            {
                accepted++;
                var reader = new System.Text.Json.Utf8JsonReader(bytes);
                while (reader.Read())
                {
                }
            }
        }

        Assert.True(accepted > 100, $"only {accepted} random inputs took the fast path");
    }

    [Fact]
    public void Flat_arrays_are_parsed_into_the_tokens_Newtonsoft_builds()
    {
        var random = new Random(7);
        for (var i = 0; i < 5_000; i++)
        {
            var parts = new List<string>();
            for (var j = random.Next(0, 6); j > 0; j--)
            {
                parts.Add(random.Next(6) switch
                {
                    0 => random.NextInt64(long.MinValue, long.MaxValue).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    1 => random.Next(-10, 10).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    2 => "\"" + new string((char)random.Next(0x20, 0x7F) is var c && c is '"' or '\\' ? 'x' : c, random.Next(0, 5)) + "\"",
                    3 => "true",
                    4 => "false",
                    _ => "null",
                });
            }

            var json = "[" + string.Join(random.Next(2) == 0 ? "," : " , ", parts) + "]";
            var bytes = Encoding.UTF8.GetBytes(json);
            Assert.True(JsonArgs.IsFlatSimpleArray(bytes), json);
            var expected = Newtonsoft.Json.Linq.JArray.Parse(json);
            var actual = JsonArgs.Parse(bytes, 64);
            Assert.Equal(expected.Count, actual.Length);
            for (var k = 0; k < actual.Length; k++)
            {
                Assert.Equal(expected[k].Type, actual[k].Type);
                Assert.True(Newtonsoft.Json.Linq.JToken.DeepEquals(expected[k], actual[k]), json);
            }
        }
    }

    [Fact]
    public void An_integer_beyond_long_is_parsed_as_Newtonsoft_does()
    {
        var args = JsonArgs.Parse(Encoding.UTF8.GetBytes("[123456789012345678901234567890, 1]"), 64);
        Assert.Equal(Newtonsoft.Json.Linq.JTokenType.Integer, args[0].Type);
        Assert.Equal(System.Numerics.BigInteger.Parse("123456789012345678901234567890", System.Globalization.CultureInfo.InvariantCulture), args[0].ToObject<System.Numerics.BigInteger>());
        Assert.Equal(1, (int)args[1]);
    }

    [Fact]
    public void The_event_name_is_skipped_from_the_Node_wire_array()
    {
        var bytes = Encoding.UTF8.GetBytes("xx[\"ping\",1,\"a\"]yy");
        var args = JsonArgs.Parse(bytes, 2, bytes.Length - 4, 1, 64);
        Assert.Equal([1L, "a"], args.Select(a => ((Newtonsoft.Json.Linq.JValue)a).Value));
    }
}
