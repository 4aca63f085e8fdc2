namespace Rx.Uhura; internal static class Placeholder { }
