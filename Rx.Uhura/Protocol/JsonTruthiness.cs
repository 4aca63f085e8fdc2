using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Protocol;

/// <summary>JavaScript truthiness for the flags Node peers send (<c>!!config.enableAcks</c>).</summary>
internal static class JsonTruthiness
{
    public static bool IsTruthy(JToken? token) => token?.Type switch
    {
        null or JTokenType.Null or JTokenType.Undefined => false,
        JTokenType.Boolean => token.Value<bool>(),
        JTokenType.Integer => token.Value<long>() != 0,
        JTokenType.Float => token.Value<double>() is var d && d != 0 && !double.IsNaN(d),
        JTokenType.String => token.Value<string>()!.Length > 0,
        _ => true,
    };
}
