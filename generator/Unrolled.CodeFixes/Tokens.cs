using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Unrolled.CodeFixes;

/// <summary>
/// Tokens with exactly the trivia given. SyntaxFactory's own tokens carry elastic trivia, which the code
/// action's clean-up reformats (it puts a new attribute list on a line of its own, for one); these keep the
/// layout the fix chose from the code around it.
/// </summary>
internal static class Tokens
{
    public static SyntaxToken Token(SyntaxKind kind) => SyntaxFactory.Token(SyntaxTriviaList.Empty, kind, SyntaxTriviaList.Empty);

    public static SyntaxToken SpaceAfter(SyntaxKind kind) => SyntaxFactory.Token(SyntaxTriviaList.Empty, kind, SyntaxFactory.TriviaList(SyntaxFactory.Space));

    public static IdentifierNameSyntax SpaceAfter(string identifier)
        => SyntaxFactory.IdentifierName(SyntaxFactory.Identifier(SyntaxTriviaList.Empty, identifier, SyntaxFactory.TriviaList(SyntaxFactory.Space)));
}
