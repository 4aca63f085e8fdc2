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
}
